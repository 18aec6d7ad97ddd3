// Containment by the kernel (issue 23, docs/design.md "Containment"), as an
// attacker with a partition user's rights: a link planted at a program's log
// (at start and at rotation) never makes root write through it; a process
// that double-forks away from its session (from a service or from a script
// run by the executor) stays in the partition's cgroup and dies with it; a
// process of the user outside any cgroup is found by the last sweep.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { CgroupTree } from '../../src/cgroup/group.js';
import { detectLayout } from '../../src/cgroup/layout.js';
import { runAs } from '../../src/executor/index.js';
import { groupConfig } from '../../src/instance/programs.js';
import { launcherPath } from '../../src/native/index.js';
import { SupervisorClient } from '../../src/supervisor/client.js';
import { ensureSupervisord } from '../../src/supervisor/daemon.js';
import { startGroup, updateSupervisor, writeGroupFile } from '../../src/supervisor/groups.js';
import { killPartitionProcesses } from '../../src/accounting/destroy.js';
import { runReportScripts } from '../../src/accounting/ingest.js';
import { executePromise } from '../../src/promise-runner/execute.js';
import { removeBeneath } from '../../src/safe-fs/index.js';
import { createUser, isRoot, tempDir, testName, type TestUser } from '../helpers/system.js';
import { stopSupervisordAtTeardown } from '../supervisor/helpers.js';

const log = pino({ level: 'silent' });
const rootTest = isRoot ? test.serial : test.skip;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor<T>(what: string, get: () => T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = get();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const readPid = (file: string) => () => {
  try {
    const n = Number(readFileSync(file, 'utf8').trim());
    return n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
};

/** Running (a killed zombie not yet reaped does not count). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^Z/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
}

/** A partition cgroup under a parent of the test's own, removed at teardown (its processes killed first). */
function partitionGroup(t: import('ava').ExecutionContext, id: string): CgroupTree {
  const tree = new CgroupTree(detectLayout(), testName('slapos-test-'));
  tree.create(id);
  t.teardown(async () => {
    await tree.kill(id).catch(() => undefined);
    for (let i = 0; i < 100; i++) {
      try {
        for (const dir of tree.directories(id)) spawnSync('find', [dir, '-mindepth', '1', '-depth', '-type', 'd', '-delete']);
        tree.remove(id);
        break;
      } catch {
        await sleep(20);
      }
    }
    tree.removeParent();
  });
  return tree;
}

/** A partition directory owned by `user` in a root-owned, traversable instance root. */
function partitionDir(t: import('ava').ExecutionContext, user: TestUser, id: string): { instanceRoot: string; dir: string } {
  const root = tempDir(t);
  chmodSync(root, 0o755);
  const instanceRoot = path.join(root, 'srv');
  mkdirSync(instanceRoot, { mode: 0o755 });
  const dir = path.join(instanceRoot, id);
  mkdirSync(path.join(dir, 'etc', 'service'), { recursive: true });
  for (const d of [dir, path.join(dir, 'etc'), path.join(dir, 'etc', 'service')]) chownSync(d, user.uid, user.gid);
  chmodSync(dir, 0o750);
  return { instanceRoot, dir };
}

function script(file: string, body: string, user: TestUser): void {
  writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  chownSync(file, user.uid, user.gid);
}

/** The cgroup of `pid` in its first v1 hierarchy or v2 ("0::"), from /proc/<pid>/cgroup. */
const cgroupOf = (pid: number) => readFileSync(`/proc/${pid}/cgroup`, 'utf8');

rootTest('supervisord programs: a log link planted at start and at rotation never reaches a root file; output reaches the user, rotated', async (t) => {
  const user = createUser(t);
  const id = 'slappart0';
  const { instanceRoot, dir } = partitionDir(t, user, id);
  const tree = partitionGroup(t, id);
  stopSupervisordAtTeardown(t, instanceRoot);
  const victim = path.join(path.dirname(instanceRoot), 'victim');
  writeFileSync(victim, 'root only\n', { mode: 0o600 });
  // "linked" finds a link to the victim at its log name from the start; "chatty" writes enough to rotate, while a
  // loop of the user's re-plants the link at the log name.
  script(path.join(dir, 'etc', 'service', 'linked'), 'echo planted-output; exec sleep 1000', user);
  script(path.join(dir, 'etc', 'service', 'chatty'), [
    'i=0; while [ $i -lt 4000 ]; do echo "line $i of a talkative service, long enough to rotate"; i=$((i+1)); done',
    `while [ ! -e ${dir}/attack-over ]; do sleep 0.05; done`,
    'i=0; while [ $i -lt 4000 ]; do echo "line $i after the attack, long enough to rotate again"; i=$((i+1)); done; exec sleep 1000',
  ].join('\n'), user);
  symlinkSync(victim, path.join(dir, `.${id}_linked.log`));
  const { paths } = await ensureSupervisord(instanceRoot, { log });
  const client = new SupervisorClient(paths.socket);
  const text = groupConfig({
    group: id, partitionDir: dir, uid: user.uid, gid: user.gid, user: { name: user.name, home: dir }, run: [], service: ['linked', 'chatty'],
    launcher: launcherPath, cgroupProcs: tree.procsFiles(id),
  });
  writeGroupFile(paths.includeDir, id, text);
  await updateSupervisor(client, log);
  const replant = spawn('/bin/sh', ['-c', `while :; do ln -sfn ${victim} ${dir}/.${id}_chatty.log 2>/dev/null; done`], { uid: user.uid, gid: user.gid, stdio: 'ignore' });
  t.teardown(() => { replant.kill('SIGKILL'); });
  await startGroup(client, id, log);
  const chattyLog = path.join(dir, `.${id}_chatty.log.1`);
  await waitFor('a rotated log', () => (existsSync(chattyLog) ? true : undefined));
  await sleep(300);
  replant.kill('SIGKILL');
  t.is(readFileSync(victim, 'utf8'), 'root only\n', 'the root file was neither appended to nor truncated');
  t.is(lstatSync(victim).uid, 0);
  // Once the user stops sabotaging its own log, output flows again, rotated, in files of the user.
  writeFileSync(path.join(dir, 'attack-over'), '');
  const regular = (file: string) => (lstatSync(file, { throwIfNoEntry: false })?.isFile() && /after the attack/.test(readFileSync(file, 'utf8')) ? file : undefined);
  const written = await waitFor('output after the attack', () => regular(chattyLog) ?? regular(chattyLog.slice(0, -2)));
  t.is(lstatSync(written).uid, user.uid, 'logs are written (and rotated) by the partition user');
  t.is(readFileSync(victim, 'utf8'), 'root only\n');
  t.regex(readFileSync(path.join(dir, `.${id}_linked.log`), 'utf8'), /^planted-output$/m, 'the planted link was replaced by the log (as a name, by the user)');
  // The services run as the user, in the partition's cgroup, from their first instruction.
  const infos = (await client.getAllProcessInfo()).filter((p) => p.group === id);
  t.is(infos.length, 2);
  for (const info of infos) {
    const pid = await waitFor('exec', () => (/^Name:\s+sleep$/m.test(readFileSync(`/proc/${info.pid}/status`, 'utf8')) ? info.pid : undefined));
    t.regex(readFileSync(`/proc/${pid}/status`, 'utf8'), new RegExp(`\\nUid:\\s+${user.uid}\\s+${user.uid}\\s+${user.uid}`));
    t.true(tree.processes(id).includes(pid));
  }
  // supervisord was handed no path of the partition but in the launcher's arguments.
  for (const line of (text ?? '').split('\n')) {
    if (line.includes(dir) && !/^(command|environment) = /.test(line)) t.fail(`partition path handed to supervisord: ${line}`);
  }
});

rootTest('a service that double-forks out of its session stays in the partition cgroup and dies with it', async (t) => {
  const user = createUser(t);
  const id = 'slappart1';
  const { instanceRoot, dir } = partitionDir(t, user, id);
  const tree = partitionGroup(t, id);
  stopSupervisordAtTeardown(t, instanceRoot);
  const pidFile = path.join(dir, 'escaped.pid');
  script(path.join(dir, 'etc', 'service', 'escape'),
    `setsid sh -c 'trap "" TERM HUP; (sh -c "trap \\"\\" TERM HUP; echo \\$\\$ > ${pidFile}; exec sleep 1000" &) ' </dev/null >/dev/null 2>&1; exec sleep 1000`, user);
  const { paths } = await ensureSupervisord(instanceRoot, { log });
  const client = new SupervisorClient(paths.socket);
  writeGroupFile(paths.includeDir, id, groupConfig({
    group: id, partitionDir: dir, uid: user.uid, gid: user.gid, user: { name: user.name, home: dir }, run: [], service: ['escape'],
    launcher: launcherPath, cgroupProcs: tree.procsFiles(id),
  }));
  await updateSupervisor(client, log);
  await startGroup(client, id, log);
  const escaped = await waitFor('the escaped pid', readPid(pidFile));
  t.true(tree.processes(id).includes(escaped), `escaped process in the cgroup (${cgroupOf(escaped).trim().replaceAll('\n', ' ')})`);
  await client.stopProcessGroup(id, true);
  t.true(alive(escaped), 'supervisord\'s group stop does not reach it (the attack)');
  const { left } = await tree.kill(id);
  t.deepEqual(left, []);
  await sleep(50);
  t.false(alive(escaped), 'the cgroup kill does');
});

rootTest('executor: a setsid double fork from a script is killed when the script exits and at the timeout; the run sub-group is removed', async (t) => {
  const user = createUser(t);
  const id = 'slappart2';
  const { dir } = partitionDir(t, user, id);
  const tree = partitionGroup(t, id);
  const escapeLine = (file: string) =>
    `setsid sh -c 'trap "" TERM HUP; (sh -c "trap \\"\\" TERM HUP; echo \\$\\$ > ${file}; exec sleep 1000" &)' </dev/null >/dev/null 2>&1`;
  const quick = path.join(dir, 'quick.pid');
  const result = await runAs({
    argv: ['/bin/sh', '-c', `${escapeLine(quick)}; while [ ! -s ${quick} ]; do sleep 0.01; done`],
    user: { ...user, home: dir }, cwd: dir, timeoutMs: 10_000, cgroup: { tree, group: id },
  });
  t.is(result.exitCode, 0, result.output);
  const first = Number(readFileSync(quick, 'utf8'));
  t.true(first > 0);
  await sleep(50);
  t.false(alive(first), 'left behind after the main process exited: killed by cgroup');
  const slow = path.join(dir, 'slow.pid');
  const timed = await runAs({
    argv: ['/bin/sh', '-c', `trap "" TERM; ${escapeLine(slow)}; sleep 1000`],
    user: { ...user, home: dir }, cwd: dir, timeoutMs: 500, killGraceMs: 200, cgroup: { tree, group: id },
  });
  t.true(timed.timedOut);
  const second = Number(readFileSync(slow, 'utf8'));
  await sleep(50);
  t.false(alive(second), 'escaped at the timeout: killed by cgroup');
  t.deepEqual(tree.processes(id), []);
  const [groupDir] = tree.directories(id);
  t.deepEqual(spawnSync('find', [groupDir as string, '-mindepth', '1', '-type', 'd'], { encoding: 'utf8' }).stdout, '', 'run sub-groups removed');
});

rootTest('a promise and a report script that double-fork out of their session die with their run (cgroup kill), at exit and at the timeout', async (t) => {
  const user = createUser(t);
  const id = 'slappart4';
  const { dir } = partitionDir(t, user, id);
  const tree = partitionGroup(t, id);
  const escapeLine = (file: string) =>
    `setsid sh -c 'trap "" TERM HUP; (sh -c "trap \\"\\" TERM HUP; echo \\$\\$ > ${file}; exec sleep 1000" &)' </dev/null >/dev/null 2>&1`;
  for (const sub of ['promise', 'report']) {
    mkdirSync(path.join(dir, 'etc', sub));
    chownSync(path.join(dir, 'etc', sub), user.uid, user.gid);
  }
  // A promise (the node's executePromise, born in the partition's cgroup) that succeeds and leaves a daemon behind.
  const fromPromise = path.join(dir, 'promise.pid');
  const promise = path.join(dir, 'etc', 'promise', 'escape');
  script(promise, `${escapeLine(fromPromise)}\nwhile [ ! -s ${fromPromise} ]; do sleep 0.01; done\necho ok`, user);
  const checked = await executePromise(promise, {
    cwd: dir, uid: user.uid, gid: user.gid, env: { HOME: dir, USER: user.name, PATH: '/usr/bin:/bin' }, timeoutMs: 10_000,
    partition: { id, cgroupParent: tree.parent },
  });
  t.is(checked.exitCode, 0, checked.output);
  const first = Number(readFileSync(fromPromise, 'utf8'));
  await sleep(50);
  t.false(alive(first), 'the promise\'s escaped daemon is killed with its run');
  // A report script (the report loop's runReportScripts) that hangs ignoring SIGTERM and leaves a daemon behind.
  const fromReport = path.join(dir, 'report.pid');
  script(path.join(dir, 'etc', 'report', 'escape'), `trap "" TERM\n${escapeLine(fromReport)}\nsleep 1000`, user);
  const started = Date.now();
  const failed = await runReportScripts({ id, path: dir, user: { ...user, home: dir } }, 1_500, log, tree.parent);
  t.deepEqual(failed, ['escape']);
  t.true(Date.now() - started < 10_000, 'bounded by report_script_timeout (+ the kill grace)');
  const second = Number(readFileSync(fromReport, 'utf8'));
  await sleep(50);
  t.false(alive(second), 'the report script\'s escaped daemon is killed at the timeout');
  t.deepEqual(tree.processes(id), [], 'nothing left in the partition\'s cgroup');
});

rootTest('destruction: the cgroup is emptied and a process of the user outside it is found by the uid sweep', async (t) => {
  const user = createUser(t);
  const id = 'slappart3';
  const tree = partitionGroup(t, id);
  const outside = spawn('/bin/sh', ['-c', 'trap "" TERM; exec sleep 1000'], { uid: user.uid, gid: user.gid, stdio: 'ignore', detached: true });
  const inside = spawn(launcherPath, [...tree.procsFiles(id).flatMap((f) => ['--cgroup', f]), '--uid', String(user.uid), '--gid', String(user.gid), '--', 'sleep', '1000'], { stdio: 'ignore' });
  t.teardown(() => { for (const c of [outside, inside]) c.kill('SIGKILL'); });
  await waitFor('the launched sleep in the cgroup', () => (tree.processes(id).includes(inside.pid as number) ? true : undefined));
  await killPartitionProcesses(id, user.uid, tree, log);
  await sleep(50);
  t.false(alive(inside.pid as number));
  t.false(alive(outside.pid as number));
  t.deepEqual(tree.processes(id), []);
});

const v1Freezer = (() => {
  try {
    const layout = detectLayout();
    return layout.kind === 'hybrid' ? layout.mounts.get('freezer') : undefined;
  } catch {
    return undefined;
  }
})();
const freezerTest = isRoot && v1Freezer ? test.serial : test.skip;

freezerTest(`cgroup v1 freezer: a group forking as fast as it can is frozen, killed and thawed until empty${v1Freezer ? '' : ' [skipped: no v1 freezer hierarchy on this machine]'}`, async (t) => {
  const user = createUser(t);
  const id = 'slappart5';
  const tree = partitionGroup(t, id);
  const freezerDir = path.join(v1Freezer as string, tree.parent, id);
  t.true(existsSync(path.join(freezerDir, 'freezer.state')), 'partition groups are made in the freezer hierarchy too');
  // Every process forks a short-lived child in a loop, and ignores SIGTERM: a moving target for pid-by-pid kills.
  const bomb = spawn(launcherPath, [...tree.procsFiles(id).flatMap((f) => ['--cgroup', f]), '--uid', String(user.uid), '--gid', String(user.gid), '--',
    '/bin/sh', '-c', 'trap "" TERM; for i in 1 2 3 4; do (trap "" TERM; while :; do sleep 0.001 & wait; done) & done; wait'], { stdio: 'ignore' });
  t.teardown(() => { bomb.kill('SIGKILL'); });
  await waitFor('the forking tasks', () => (tree.processes(id).length >= 5 ? true : undefined));
  const { left, killed } = await tree.kill(id);
  t.deepEqual(left, []);
  t.true(killed >= 5, `${killed} tasks signalled`);
  t.deepEqual(tree.processes(id), []);
  t.is(readFileSync(path.join(freezerDir, 'freezer.state'), 'utf8').trim(), 'THAWED', 'never left frozen');
});

freezerTest(`a group made before the freezer hierarchy was used keeps working: joined, killed by signal rounds${v1Freezer ? '' : ' [skipped: no v1 freezer hierarchy on this machine]'}`, async (t) => {
  const user = createUser(t);
  const id = 'slappart7';
  const tree = partitionGroup(t, id);
  const freezerDir = path.join(v1Freezer as string, tree.parent, id);
  spawnSync('rmdir', [freezerDir]); // as an older node made it
  t.false(existsSync(freezerDir));
  t.true(tree.exists(id));
  t.false(tree.procsFiles(id).some((f) => f.startsWith(v1Freezer as string)), 'not asked to join a freezer group that is not there');
  const inside = spawn(launcherPath, [...tree.procsFiles(id).flatMap((f) => ['--cgroup', f]), '--uid', String(user.uid), '--gid', String(user.gid), '--', 'sleep', '1000'], { stdio: 'ignore' });
  t.teardown(() => { inside.kill('SIGKILL'); });
  await waitFor('the launched sleep in the cgroup', () => (tree.processes(id).includes(inside.pid as number) ? true : undefined));
  t.deepEqual((await tree.kill(id)).left, []);
  await sleep(50);
  t.false(alive(inside.pid as number));
});

freezerTest(`destruction is not reported while a process of the user cannot be killed (one frozen in another freezer group); it is once the process is gone${v1Freezer ? '' : ' [skipped: no v1 freezer hierarchy on this machine]'}`, async (t) => {
  const user = createUser(t);
  const id = 'slappart6';
  const tree = partitionGroup(t, id);
  // A process of the partition's user outside its cgroup, frozen in a group of the test's own: SIGKILL stays pending.
  const jail = path.join(v1Freezer as string, testName('slapos-test-'));
  mkdirSync(jail);
  const stuck = spawn('/bin/sh', ['-c', 'exec sleep 1000'], { uid: user.uid, gid: user.gid, stdio: 'ignore', detached: true });
  t.teardown(async () => {
    writeFileSync(path.join(jail, 'freezer.state'), 'THAWED');
    stuck.kill('SIGKILL');
    await sleep(100);
    spawnSync('rmdir', [jail]);
  });
  writeFileSync(path.join(jail, 'cgroup.procs'), String(stuck.pid));
  writeFileSync(path.join(jail, 'freezer.state'), 'FROZEN');
  await waitFor('the frozen process', () => (readFileSync(path.join(jail, 'freezer.state'), 'utf8').trim() === 'FROZEN' ? true : undefined));
  await t.throwsAsync(killPartitionProcesses(id, user.uid, tree, log), { message: new RegExp(`process\\(es\\) ${stuck.pid} of uid ${user.uid} still alive after SIGKILL`) },
    'the destruction step fails: the partition is not reported destroyed, its slot not offered again');
  t.true(alive(stuck.pid as number));
  writeFileSync(path.join(jail, 'freezer.state'), 'THAWED'); // the pending SIGKILL is delivered
  await waitFor('the process gone', () => (alive(stuck.pid as number) ? undefined : true));
  await killPartitionProcesses(id, user.uid, tree, log);
  t.pass('reported destroyed on the next pass, no process of the user being left');
});

rootTest('slapos-launch refuses root and fails closed when it cannot join its cgroup', (t) => {
  const asRoot = spawnSync(launcherPath, ['--uid', '0', '--gid', '0', '--', 'true'], { encoding: 'utf8' });
  t.is(asRoot.status, 127);
  t.regex(asRoot.stderr, /refusing to run as uid\/gid 0/);
  const missing = spawnSync(launcherPath, ['--cgroup', '/nonexistent/cgroup.procs', '--', 'true'], { encoding: 'utf8' });
  t.is(missing.status, 127);
  t.regex(missing.stderr, /cannot join cgroup \/nonexistent\/cgroup\.procs/);
});

test('removal: a tree 1,000 directories deep goes, with one descriptor at a time, and links in it are removed as names', (t) => {
  const base = tempDir(t);
  const victim = path.join(tempDir(t), 'kept');
  writeFileSync(victim, 'kept');
  const rel = 'deep';
  mkdirSync(path.join(base, rel));
  // Built with relative mkdirs from a descriptor-free walk: paths of 1,000 components exceed PATH_MAX.
  const cwd = process.cwd();
  try {
    process.chdir(path.join(base, rel));
    for (let i = 0; i < 1000; i++) {
      mkdirSync('d');
      process.chdir('d');
      if (i % 100 === 0) symlinkSync(victim, 'link');
    }
    writeFileSync('leaf', 'x');
  } finally {
    process.chdir(cwd);
  }
  t.deepEqual(removeBeneath(base, rel), []);
  t.false(existsSync(path.join(base, rel)));
  t.is(readFileSync(victim, 'utf8'), 'kept');
});
