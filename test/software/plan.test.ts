// Pure decisions of the software loop and the pid file rules.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  matchesOnlySr, parseOnlySr, planGarbage, planSoftware, softwareBuildoutArgs, softwareBuildoutCfg, urlHash,
} from '../../src/software/plan.js';
import { BUILDOUT_LAUNCHER, buildoutCommand, SYSTEM_PYTHON } from '../../src/software/buildout.js';
import { acquirePidFile, AlreadyRunningError } from '../../src/util/pidfile.js';
import { tempDir } from '../helpers/system.js';

const A = 'http://example.com/a/software.cfg';
const B = '/srv/b/software.cfg';

test('the directory name is the md5 of the URL', (t) => {
  t.is(urlHash(''), 'd41d8cd98f00b204e9800998ecf8427e');
  t.is(urlHash(A), 'cbb3b4176547219d4f2fa9a4fa6f252e');
});

test('--only-sr accepts URLs and hashes, trimmed', (t) => {
  const only = parseOnlySr(` ${A} , ${urlHash(B)},`);
  t.deepEqual(only, [A, urlHash(B)]);
  t.true(matchesOnlySr(urlHash(A), only));
  t.true(matchesOnlySr(urlHash(B), only));
  t.false(matchesOnlySr(urlHash('other'), only));
  t.true(matchesOnlySr(urlHash('other'), undefined));
});

test('plan: install what is not completed, skip completed, destroy, filter, ignore unknown states', (t) => {
  const completed = new Set([urlHash(B)]);
  const releases = [
    { url: A, requestedState: 'available' },
    { url: B, requestedState: 'available' },
    { url: 'file:///c', requestedState: 'destroyed' },
    { url: 'file:///d', requestedState: 'started' },
  ];
  const actions = (force: boolean, onlySr?: string[]) =>
    planSoftware(releases, { force, onlySr, isCompleted: (hash) => completed.has(hash) }).map((s) => s.action);
  t.deepEqual(actions(false), ['install', 'up-to-date', 'destroy', 'ignored']);
  t.deepEqual(actions(true), ['install', 'install', 'destroy', 'ignored']);
  t.deepEqual(actions(false, [B]), ['filtered', 'up-to-date', 'filtered', 'filtered']);
});

test('garbage collection keeps available releases, non-hash names and directories without buildout.cfg', (t) => {
  const steps = planSoftware([{ url: A, requestedState: 'available' }], { force: false, isCompleted: () => true });
  const unused = 'f'.repeat(32);
  const entries = [
    { name: urlHash(A), hasBuildoutCfg: true },
    { name: unused, hasBuildoutCfg: true },
    { name: 'e'.repeat(32), hasBuildoutCfg: false },
    { name: 'shared', hasBuildoutCfg: true },
  ];
  t.deepEqual(planGarbage(entries, steps), [unused]);
});

test('the software buildout.cfg extends the release, with the part lists', (t) => {
  t.is(softwareBuildoutCfg(A, [], []), `[buildout]\nextends = ${A}\nshared-part-list =\nbuild-time-part-list =\n`);
  t.is(
    softwareBuildoutCfg(A, ['/opt/shared', '/srv/shared'], ['gcc']),
    `[buildout]\nextends = ${A}\nshared-part-list =\n  /opt/shared\n  /srv/shared\nbuild-time-part-list =\n  gcc\n`,
  );
  t.throws(() => softwareBuildoutCfg('http://x/\n[evil]', [], []), { message: /line break/ });
});

test('buildout arguments: -N unless develop, extends-cache, directory, -c', (t) => {
  t.deepEqual(softwareBuildoutArgs('/sr/abc', { develop: false }), [
    '-U', 'buildout:extends-cache=/sr/abc/extends-cache', 'buildout:directory=/sr/abc', '-N', '-c', '/sr/abc/buildout.cfg',
  ]);
  t.false(softwareBuildoutArgs('/sr/abc', { develop: true }).includes('-N'));
});

test('buildout command: the launcher by default, a .py with the system python, a script through its shebang', (t) => {
  t.deepEqual(buildoutCommand(undefined), [SYSTEM_PYTHON, BUILDOUT_LAUNCHER]);
  t.true(existsSync(BUILDOUT_LAUNCHER));
  t.deepEqual(buildoutCommand('/x/launcher.py'), [SYSTEM_PYTHON, '/x/launcher.py']);
  const dir = tempDir(t);
  const script = path.join(dir, 'buildout');
  writeFileSync(script, '#!/opt/python/bin/python3 -S\nprint()\n');
  t.deepEqual(buildoutCommand(script), ['/opt/python/bin/python3', '-S', script]);
  const binary = path.join(dir, 'binary');
  writeFileSync(binary, 'ELF');
  t.deepEqual(buildoutCommand(binary), [binary]);
  t.throws(() => buildoutCommand(path.join(dir, 'missing')), { message: /\[slapos\] buildout = .*missing: cannot read it/ });
});

test('pid file: created, refused while a live slapos process holds it, stale replaced, released', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'run', 'slapgrid-sr.pid');
  const lock = acquirePidFile(file);
  t.is(readFileSync(file, 'utf8'), String(process.pid));
  t.false(lock.replacedStale);
  lock.release();
  t.false(existsSync(file));

  // A live process whose command line says slapos holds it.
  const holder = spawn('sleep', ['30'], { argv0: 'slapos-test-holder', stdio: 'ignore' });
  t.teardown(() => holder.kill('SIGKILL'));
  await new Promise((resolve) => holder.once('spawn', resolve));
  writeFileSync(file, String(holder.pid));
  const error = t.throws(() => acquirePidFile(file), { instanceOf: AlreadyRunningError });
  t.is(error?.pid, holder.pid ?? -1);

  // A live process that is not slapos, and a dead pid: stale.
  const other = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.teardown(() => other.kill('SIGKILL'));
  await new Promise((resolve) => other.once('spawn', resolve));
  for (const pid of [String(other.pid), '999999999', 'garbage']) {
    writeFileSync(file, pid);
    const again = acquirePidFile(file);
    t.true(again.replacedStale, pid);
    again.release();
  }
});
