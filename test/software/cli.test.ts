// `slapos node software` as a user runs it: pid file and exit statuses.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isRoot, repoRoot, tempDir } from '../helpers/system.js';

const rootTest = isRoot ? test.serial : test.skip;

function setup(dir: string) {
  const pidFile = path.join(dir, 'slapgrid-sr.pid');
  for (const sub of ['software', 'instance']) mkdirSync(path.join(dir, sub));
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(
    cfg,
    `[slapos]\ncomputer_id = COMP-1\nmaster_url = http://127.0.0.1:1/\nsoftware_root = ${dir}/software\n` +
      `instance_root = ${dir}/instance\npidfile_software = ${pidFile}\nmaximal_delay = 3600\n`,
  );
  return { cfg, pidFile };
}

const slapos = (args: string[]) =>
  spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'slapos.js'), ...args], {
    encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 30_000,
  });

rootTest('a second run exits 10 while another slapos process holds the pid file', async (t) => {
  const dir = tempDir(t);
  const { cfg, pidFile } = setup(dir);
  const holder = spawn('sleep', ['30'], { argv0: 'slapos-node-software', stdio: 'ignore' });
  t.teardown(() => holder.kill('SIGKILL'));
  await new Promise((resolve) => holder.once('spawn', resolve));
  writeFileSync(pidFile, String(holder.pid));
  const result = slapos(['node', 'software', '--now', '--cfg', cfg]);
  t.is(result.status, 10, result.stderr);
  t.regex(result.stderr, /already running with pid/);
});

rootTest('a stale pid file is replaced; an unreachable master is a clear error, exit 1', (t) => {
  const dir = tempDir(t);
  const { cfg, pidFile } = setup(dir);
  chownSync(path.join(dir, 'software'), 65534, 65534);
  writeFileSync(pidFile, '999999999');
  const result = slapos(['node', 'software', '--now', '--cfg', cfg]);
  t.is(result.status, 1);
  t.regex(result.stderr, /was stale, overwritten/);
  t.regex(result.stderr, /getFullComputerInformation: master http:\/\/127\.0\.0\.1:1\/ unreachable/);
  t.false(existsSync(pidFile));
  t.true(existsSync(path.join(dir, 'instance', 'etc', 'supervisord.conf')));
});

test('--all and --only-sr exclude each other', (t) => {
  const dir = tempDir(t);
  const { cfg } = setup(dir);
  const result = slapos(['node', 'software', '--now', '--all', '--only-sr', 'x', '--cfg', cfg, ...(isRoot ? [] : [])]);
  t.is(result.status, isRoot ? 1 : 5);
  if (isRoot) t.regex(result.stderr, /--all and --only-sr cannot be used together/);
});
