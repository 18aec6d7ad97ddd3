// The one executor: own session, whole tree killed at the timeout and after
// the main process exits, groups by one rule, clean environment, umask,
// output capped.
import test from 'ava';
import { readFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { commandLine, environment, forkServerCommandLine, runAs } from '../../src/executor/index.js';
import { createUser, isRoot, tempDir } from '../helpers/system.js';

/** Running (a killed zombie not yet reaped by init does not count). */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^Z/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
};

test('commandLine: slapos-launch with cgroups, user, init-groups or none, only as root', (t) => {
  const user = { uid: 1001, gid: 1002, name: 'p', home: '/h' };
  const L = '/x/slapos-launch';
  t.deepEqual(commandLine({ argv: ['a', 'b'], user, initGroups: true }, true, ['/c/cgroup.procs'], L), [L, '--cgroup', '/c/cgroup.procs', '--uid', '1001', '--gid', '1002', '--init-groups', '--', 'a', 'b']);
  t.deepEqual(commandLine({ argv: ['a'], user, initGroups: false }, true, [], L), [L, '--uid', '1001', '--gid', '1002', '--', 'a']);
  t.deepEqual(commandLine({ argv: ['a'] }, true, ['/c/cgroup.procs'], L), [L, '--cgroup', '/c/cgroup.procs', '--', 'a']);
  t.deepEqual(commandLine({ argv: ['a'], user }, false), ['a']);
  t.throws(() => commandLine({ argv: [] }, true));
  t.deepEqual(commandLine({ argv: ['a'], user, noNewPrivs: true }, true, [], L), [L, '--uid', '1001', '--gid', '1002', '--init-groups', '--no-new-privs', '--', 'a']);
  // The fork server's client takes the same options, and buildout's arguments only.
  t.deepEqual(
    forkServerCommandLine({ user, noNewPrivs: true }, { socket: '/s', args: ['-U', '-c', 'b.cfg'] }, ['/c/cgroup.procs'], '/x/client'),
    ['/x/client', '--socket', '/s', '--cgroup', '/c/cgroup.procs', '--uid', '1001', '--gid', '1002', '--init-groups', '--no-new-privs', '--', '-U', '-c', 'b.cfg'],
  );
  t.deepEqual(environment({ user, env: { X: '1' } }), { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', HOME: '/h', USER: 'p', LOGNAME: 'p', X: '1' });
});

test('a grandchild left in the background is killed at the timeout; no hang', async (t) => {
  const dir = tempDir(t);
  const pidFile = path.join(dir, 'grandchild');
  const started = Date.now();
  const result = await runAs({
    argv: ['/bin/sh', '-c', `sleep 1000 & echo $! > ${pidFile}; trap '' TERM; sleep 1000`],
    cwd: dir, timeoutMs: 500, killGraceMs: 300,
  });
  t.true(result.timedOut);
  t.true(Date.now() - started < 5_000);
  const grandchild = Number(readFileSync(pidFile, 'utf8'));
  await new Promise((r) => setTimeout(r, 100));
  t.false(alive(grandchild));
});

test('what the main process leaves behind is killed when it exits, even outside its group', async (t) => {
  const dir = tempDir(t);
  const pidFile = path.join(dir, 'grandchild');
  const result = await runAs({
    // A new process group only (setpgid) stays in the session: found through it.
    argv: ['/bin/sh', '-c', `/usr/bin/python3 -c 'import os, time; os.setpgid(0, 0); time.sleep(1000)' >/dev/null 2>&1 & echo $! > ${pidFile}; sleep 0.3; echo done`],
    cwd: dir, timeoutMs: 10_000,
  });
  t.is(result.exitCode, 0);
  t.is(result.output, 'done\n');
  const grandchild = Number(readFileSync(pidFile, 'utf8'));
  await new Promise((r) => setTimeout(r, 100));
  t.false(alive(grandchild));
  t.true(result.killed >= 1);
});

test('clean environment, umask, output cap and lines', async (t) => {
  const dir = tempDir(t);
  process.env.SLT_LEAK = 'leak';
  t.teardown(() => delete process.env.SLT_LEAK);
  const lines: string[] = [];
  const result = await runAs({
    argv: ['/bin/sh', '-c', 'echo "leak=${SLT_LEAK:-none} mine=$MINE"; umask; head -c 5000 /dev/zero | tr "\\0" x; echo; echo err >&2'],
    cwd: dir, env: { MINE: 'yes' }, umask: 0o027, maxOutput: 100, onLine: (l) => lines.push(l),
  });
  t.is(result.exitCode, 0);
  t.is(lines[0], 'leak=none mine=yes');
  t.is(lines[1], '0027');
  t.true(lines.includes('err'));
  t.true(Buffer.byteLength(result.output) <= 100);
});

test('spawn failure is reported, not thrown', async (t) => {
  const result = await runAs({ argv: ['/nonexistent/program'], cwd: '/' });
  t.truthy(result.spawnError);
});

(isRoot ? test : test.skip)(`as a partition user: uid, gid, groups by the rule; root refused${isRoot ? '' : ' (skipped: needs root)'}`, async (t) => {
  const user = createUser(t);
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const home = { ...user, home: dir };
  const plain = await runAs({ argv: ['/usr/bin/id'], user: home, cwd: dir, initGroups: false });
  t.regex(plain.output, new RegExp(`uid=${user.uid}\\(${user.name}\\) gid=${user.gid}\\(${user.name}\\) groups=${user.gid}`));
  const groups = await runAs({ argv: ['/usr/bin/id', '-G'], user: home, cwd: dir, initGroups: true });
  t.is(groups.output.trim(), String(user.gid));
  await t.throwsAsync(runAs({ argv: ['/usr/bin/id'], user: { uid: 0, gid: 0, name: 'root', home: '/root' }, cwd: dir }), { message: /refusing/ });
});
