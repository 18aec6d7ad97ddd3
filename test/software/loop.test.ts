// The software loop with real zc.buildout (Debian's, through our launcher),
// run as a real unprivileged software user, against an in-memory master.
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildoutCommand } from '../../src/software/buildout.js';
import { processSoftwareReleases, type SoftwareLoopOptions } from '../../src/software/loop.js';
import { urlHash } from '../../src/software/plan.js';
import { isRoot, repoRoot, type TestUser } from '../helpers/system.js';
import { FakeSoftwareMaster } from './fake-link.js';
import { softwareNode as node } from './node.js';

const EXAMPLE = path.join(repoRoot, 'examples', 'hello-http', 'software.cfg');
const rootTest = isRoot ? test.serial : test.skip;

rootTest('the example release builds offline; a broken one reports its error and does not stop the others; destroyed is removed', async (t) => {
  const { dir, user, options } = node(t);
  t.is(options.user?.uid, user.uid);
  const broken = path.join(dir, 'broken.cfg');
  writeFileSync(broken, '[buildout]\nparts = missing-part\n');
  const gone = 'http://example.invalid/gone/software.cfg';
  const gonePath = path.join(options.softwareRoot, urlHash(gone));
  mkdirSync(path.join(gonePath, 'bin'), { recursive: true });
  writeFileSync(path.join(gonePath, 'buildout.cfg'), '');
  chmodSync(path.join(gonePath, 'bin'), 0o500);

  const master = new FakeSoftwareMaster([
    { url: broken, requestedState: 'available' },
    { url: EXAMPLE, requestedState: 'available' },
    { url: gone, requestedState: 'destroyed' },
  ]);
  const result = await processSoftwareReleases(master, options);
  t.is(result.exitCode, 1);
  t.deepEqual(master.calls, [
    'softwareReleases', `building ${broken}`, `error ${broken}`, `building ${EXAMPLE}`, `available ${EXAMPLE}`, `destroyed ${gone}`,
  ]);
  const message = master.errors.get(broken) ?? '';
  t.regex(message, /Failed to run buildout profile in directory '.*'/);
  t.regex(message, /missing-part/);
  t.deepEqual(result.summary.failed.map((f) => f.url), [broken]);
  t.deepEqual(result.summary.installed.map((f) => f.url), [EXAMPLE]);
  t.deepEqual(result.summary.destroyed.map((f) => f.url), [gone]);
  t.false(existsSync(gonePath));

  const sp = path.join(options.softwareRoot, urlHash(EXAMPLE));
  t.true(existsSync(path.join(sp, '.completed')));
  t.false(existsSync(path.join(options.softwareRoot, urlHash(broken), '.completed')));
  t.is(readFileSync(path.join(sp, 'buildout.cfg'), 'utf8').split('\n')[1], `extends = ${EXAMPLE}`);
  const instanceCfg = readFileSync(path.join(sp, 'instance.cfg'), 'utf8');
  t.true(instanceCfg.includes(`eggs-directory = ${sp}/eggs`));
  t.true(existsSync(path.join(sp, 'eggs', 'hello_recipe-1.0.egg')));
  // Built by the software user, under umask 027, with HOME in the software directory.
  const bin = statSync(path.join(sp, 'bin'));
  t.is(bin.uid, user.uid);
  t.is(bin.mode & 0o777, 0o750);
  t.is(statSync(path.join(sp, 'bin', 'hello-http-server')).uid, user.uid);

  // Second run: nothing to do, no buildout, no report.
  master.calls.length = 0;
  master.releases = [{ url: EXAMPLE, requestedState: 'available' }];
  const again = await processSoftwareReleases(master, options);
  t.is(again.exitCode, 0);
  t.deepEqual(master.calls, ['softwareReleases']);
  t.is(again.summary.upToDate.length, 1);

  // --all: rebuilt and reported again.
  master.calls.length = 0;
  const forced = await processSoftwareReleases(master, { ...options, force: true });
  t.is(forced.exitCode, 0);
  t.deepEqual(master.calls, ['softwareReleases', `building ${EXAMPLE}`, `available ${EXAMPLE}`]);

  // The example's instance profile, with what the instance loop provides, runs a real server.
  await checkInstanceProfile(t, dir, sp, user, options);
});

async function checkInstanceProfile(t: ExecutionContext, dir: string, sp: string, user: TestUser, options: SoftwareLoopOptions) {
  const partition = path.join(dir, 'slappart0');
  mkdirSync(partition, { mode: 0o750 });
  chownSync(partition, user.uid, user.gid);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  writeFileSync(
    path.join(partition, 'buildout.cfg'),
    readFileSync(path.join(sp, 'instance.cfg'), 'utf8') +
      `\n[slapos-node-configuration]\nipv4-random = 127.0.0.1\nipv6-random = ::1\ninstance-title = test-instance\n` +
      `\n[hello-http]\nport = ${port}\n`,
  );
  const run = spawnSync('/bin/sh', ['-c', `umask 027; exec "$@"`, 'sh', ...options.buildoutCommand, '-U'], {
    cwd: partition, uid: user.uid, gid: user.gid, env: { HOME: partition, PATH: '/usr/bin:/bin' }, encoding: 'utf8',
  });
  t.is(run.status, 0, run.stdout + run.stderr);
  const connection = JSON.parse(readFileSync(path.join(partition, '.slapos-connection.json'), 'utf8')) as Record<string, string>;
  t.deepEqual(connection, { url: `http://[::1]:${port}/`, 'url-ipv4': `http://127.0.0.1:${port}/` });
  const server = spawn(path.join(partition, 'etc', 'service', 'hello-http'), [], { uid: user.uid, gid: user.gid, stdio: 'ignore' });
  t.teardown(() => server.kill('SIGKILL'));
  let body = '';
  // Up to 30 s: the server starts slowly on a loaded 2-core machine.
  for (let i = 0; i < 300 && body === ''; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    body = await fetch(connection['url-ipv4']!).then((r) => r.text(), () => '');
  }
  t.is(body, 'Hello from test-instance\n');
  t.is(await fetch(connection.url!).then((r) => r.text()), 'Hello from test-instance\n');
  server.kill('SIGTERM');
}

rootTest('[slapos] buildout: a script is run with its interpreter, as the software user, in a clean environment', async (t) => {
  const { dir, user, options } = node(t);
  const script = path.join(dir, 'fake-buildout');
  writeFileSync(
    script,
    '#!/bin/sh\n' +
      'printf "%s\\n" "$@" > args\n' +
      'printf "HOME=%s\\nUID=%s\\nUMASK=%s\\nFOO=%s\\n" "$HOME" "$(id -u)" "$(umask)" "$FOO" > env\n' +
      'echo "it works" >&2\n',
    { mode: 0o755 },
  );
  process.env.FOO = 'leak';
  t.teardown(() => delete process.env.FOO);
  const url = 'http://example.invalid/any/software.cfg';
  const master = new FakeSoftwareMaster([{ url, requestedState: 'available' }]);
  const result = await processSoftwareReleases(master, { ...options, buildoutCommand: buildoutCommand(script) });
  t.is(result.exitCode, 0);
  const sp = path.join(options.softwareRoot, urlHash(url));
  t.deepEqual(readFileSync(path.join(sp, 'args'), 'utf8').trim().split('\n'), [
    '-U', `buildout:extends-cache=${sp}/extends-cache`, `buildout:directory=${sp}`, '-N', '-c', `${sp}/buildout.cfg`,
  ]);
  t.is(readFileSync(path.join(sp, 'env'), 'utf8'), `HOME=${sp}\nUID=${user.uid}\nUMASK=0027\nFOO=\n`);
});

rootTest('[slapos] buildout: the launcher copied elsewhere (a .py) builds the example', async (t) => {
  const { dir, options } = node(t);
  const launcher = path.join(dir, 'my-buildout.py');
  copyFileSync(path.join(repoRoot, 'lib', 'buildout-launcher.py'), launcher);
  chmodSync(launcher, 0o644);
  const master = new FakeSoftwareMaster([{ url: `file://${EXAMPLE}`, requestedState: 'available' }]);
  const result = await processSoftwareReleases(master, { ...options, buildoutCommand: buildoutCommand(launcher) });
  t.is(result.exitCode, 0, JSON.stringify(result.summary.failed));
  t.true(existsSync(path.join(options.softwareRoot, urlHash(`file://${EXAMPLE}`), 'instance.cfg')));
});

rootTest('not enough free space fails the release with a message naming it', async (t) => {
  const { options } = node(t);
  const master = new FakeSoftwareMaster([{ url: EXAMPLE, requestedState: 'available' }]);
  const result = await processSoftwareReleases(master, { ...options, minFreeSpace: Number.MAX_SAFE_INTEGER });
  t.is(result.exitCode, 1);
  t.regex(master.errors.get(EXAMPLE) ?? '', /Not enough space for .*software_min_free_space/);
});

rootTest('garbage collection removes software no available release uses', async (t) => {
  const { options } = node(t);
  const unused = path.join(options.softwareRoot, 'a'.repeat(32));
  mkdirSync(unused);
  writeFileSync(path.join(unused, 'buildout.cfg'), '');
  const master = new FakeSoftwareMaster([]);
  const result = await processSoftwareReleases(master, { ...options, garbageCollect: true });
  t.deepEqual(result.summary.garbageCollected, [unused]);
  t.false(existsSync(unused));
});
