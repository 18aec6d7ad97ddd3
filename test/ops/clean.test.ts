// scripts/clean-test-leftovers.sh removes what its registry names, and only
// that: look-alike objects of another run (same kind of names, not recorded)
// stay.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { detectLayout, groupDirectories } from '../../src/cgroup/layout.js';
import { isAlive as alive, deleteAccount, isRoot, repoRoot, run, tempDir, testName } from '../helpers/system.js';

const rootOnly = isRoot ? test.serial : test.skip;

rootOnly('clean-test-leftovers removes the registry\'s namespaces, users, cgroups, servers and directories, nothing else', async (t) => {
  const work = tempDir(t, 'slapos-clean-');
  const ours = testName('slt');
  const theirs = testName('slt');
  const made = { netns: [] as string[], users: [] as string[], cgroups: [] as string[], pids: [] as number[] };
  t.teardown(() => {
    for (const pid of made.pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    for (const ns of made.netns) spawnSync('ip', ['netns', 'del', ns]);
    for (const user of made.users) { deleteAccount('user', user); deleteAccount('group', user); }
    for (const dir of made.cgroups) { try { rmdirSync(dir); } catch { /* removed */ } }
  });
  for (const prefix of [ours, theirs]) {
    run('ip', ['netns', 'add', `${prefix}n`]);
    made.netns.push(`${prefix}n`);
    run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', `${prefix}u0`]);
    made.users.push(`${prefix}u0`);
    for (const dir of groupDirectories(detectLayout(), `${prefix}cg`)) {
      mkdirSync(dir, { recursive: true });
      made.cgroups.push(dir);
    }
  }
  // A "supervisord" of ours (its pid file in a recorded directory) and one of theirs.
  const server = (dir: string) => {
    const child = spawn('bash', ['-c', 'exec -a "supervisord -c test" sleep 60'], { stdio: 'ignore' });
    made.pids.push(child.pid as number);
    mkdirSync(path.join(dir, 'inst', 'var', 'run'), { recursive: true });
    writeFileSync(path.join(dir, 'inst', 'var', 'run', 'supervisord.pid'), `${child.pid}\n`);
    return child.pid as number;
  };
  const ourDir = path.join(work, 'ours');
  const theirDir = path.join(work, 'theirs');
  const ourServer = server(ourDir);
  const theirServer = server(theirDir);
  await new Promise((resolve) => setTimeout(resolve, 200)); // exec done: the cmdline says supervisord

  const registry = path.join(work, 'registry');
  writeFileSync(registry, `prefix ${ours}\ndir ${ourDir}\nprefix /\nprefix ${'x'.repeat(40)}\ndir /\n`);
  const result = spawnSync('bash', [path.join(repoRoot, 'scripts', 'clean-test-leftovers.sh'), registry], { encoding: 'utf8' });
  t.is(result.status, 0, result.stderr);
  t.log(result.stdout.trim());

  const namespaces = run('ip', ['netns', 'list']);
  t.false(namespaces.includes(`${ours}n`));
  t.true(namespaces.includes(`${theirs}n`));
  t.is(spawnSync('getent', ['passwd', `${ours}u0`]).status, 2);
  t.is(spawnSync('getent', ['passwd', `${theirs}u0`]).status, 0);
  for (const dir of made.cgroups) t.is(existsSync(dir), dir.includes(theirs), dir);
  for (let i = 0; i < 50 && alive(ourServer); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  t.false(alive(ourServer), 'our supervisord is stopped');
  t.true(alive(theirServer), 'theirs runs on');
  t.false(existsSync(ourDir));
  t.true(existsSync(theirDir));
  t.true(existsSync('/tmp'), 'a bad line ("dir /") is ignored');

  const none = spawnSync('bash', [path.join(repoRoot, 'scripts', 'clean-test-leftovers.sh'), path.join(work, 'missing')], { encoding: 'utf8' });
  t.is(none.status, 0);
  t.regex(none.stdout, /no test registry given; nothing to do/);
});
