// native/cgroups.cc + src/cgroup for real, on both layouts this machine has:
// the hybrid v1 hierarchies and the cgroup2 mount beside them.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { CgroupTree } from '../../src/cgroup/group.js';
import { detectLayout, groupDirectories, unifiedLayout, type CgroupLayout } from '../../src/cgroup/layout.js';
import { native } from '../../src/native/index.js';
import { createNetns, isRoot, jsonInNetns, serialUnless, testName } from '../helpers/system.js';

const rootOnly = isRoot ? test.serial : test.skip;
const hostKind = isRoot ? detectLayout().kind : null;
const hybridOnly = serialUnless(!isRoot ? 'needs root' : hostKind !== 'hybrid' ? `the host layout is ${hostKind}, not hybrid (the unified test covers it)` : null);
const unifiedRoot = native().cgroupFsType('/sys/fs/cgroup') === 'cgroup2' ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
const hasCgroup2 = existsSync(unifiedRoot) && native().cgroupFsType(unifiedRoot) === 'cgroup2';
const cgroup2Only = serialUnless(!isRoot ? 'needs root' : !hasCgroup2 ? 'no cgroup2 mount on this machine' : null);

function burner(t: { teardown(fn: () => void): void }): ChildProcess {
  // Burns CPU and holds ~32 MB until killed, from the moment it reads a line
  // (see start): cgroup v1 does not move memory charged before a move.
  const child = spawn(process.execPath, ['-e', "process.stdin.once('data', () => { const b = Buffer.alloc(32 << 20, 1); for (;;) { b[0]++; } })"], { stdio: ['pipe', 'ignore', 'ignore'] });
  t.teardown(() => child.kill('SIGKILL'));
  return child;
}

/** Lets a burner allocate and burn, once it is in its group. */
function start(child: ChildProcess): void {
  child.stdin?.write('go\n');
}

/** Removes test groups even after a failure: kills what is left in them, waits until they are empty. */
async function cleanup(tree: CgroupTree, groups: string[]): Promise<void> {
  for (const group of groups) {
    if (!tree.exists(group)) continue;
    for (const pid of tree.processes(group)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    for (let i = 0; i < 100 && tree.processes(group).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    tree.remove(group);
  }
  tree.removeParent();
}

async function exercise(t: import('ava').ExecutionContext, layout: CgroupLayout): Promise<void> {
  const tree = new CgroupTree(layout, testName('slapos-test-'));
  const group = 'slappart0';
  t.teardown(() => cleanup(tree, [group]));

  t.true(tree.create(group));
  t.false(tree.create(group), 'second create is a no-op');
  t.true(tree.exists(group));

  const child = burner(t);
  tree.addProcess(group, child.pid as number);
  t.deepEqual(tree.processes(group), [child.pid]);
  start(child);
  // At least 0.7 s of burning; longer (up to 5 s) when the machine is busy.
  const began = Date.now();
  let usage = tree.usage(group);
  for (let waited = 0; waited < 700 || ((usage.cpuUsec ?? 0) <= 100_000 && waited < 5_000); waited = Date.now() - began) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    usage = tree.usage(group);
  }
  t.true((usage.cpuUsec ?? 0) > 100_000, `cpu ${usage.cpuUsec} µs after ${Date.now() - began} ms of burning`);
  if (layout.kind === 'hybrid') {
    t.true((usage.memoryBytes ?? 0) > 16 << 20, `memory ${usage.memoryBytes}`);
    t.true((usage.pids ?? 0) >= 1, `pids.current ${usage.pids} counts the burner's threads`);
  }

  const busy = t.throws(() => tree.remove(group));
  t.is((busy as NodeJS.ErrnoException).code, 'EBUSY');

  child.kill('SIGKILL');
  await once(child, 'exit');
  // The kernel may take a moment to empty the group after the exit.
  for (let i = 0; i < 50 && tree.processes(group).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
  t.true(tree.remove(group));
  t.false(tree.remove(group), 'second remove is a no-op');
  t.false(tree.exists(group));
}

hybridOnly('hybrid layout (v1 controllers): create, add a pid, usage, remove', async (t) => {
  const layout = detectLayout();
  t.is(layout.kind, 'hybrid');
  await exercise(t, layout);
});

hybridOnly('hybrid layout: limits are written and read back', (t) => {
  const layout = detectLayout();
  if (layout.kind !== 'hybrid') return t.fail('the layout changed since the test was declared');
  const tree = new CgroupTree(layout, testName('slapos-test-'));
  t.teardown(() => cleanup(tree, ['slappart1']));
  tree.create('slappart1');
  tree.setLimits('slappart1', { cpuWeight: 50, cpuQuotaPercent: 150, memoryMax: 256 << 20, pidsMax: 64 });
  const [dirCpu] = tree.directories('slappart1').filter((d) => d.includes('/cpu/'));
  const read = (file: string) => native().cgroupReadValues([file])[0]?.trim();
  t.is(read(`${dirCpu}/cpu.shares`), '512');
  t.is(read(`${dirCpu}/cpu.cfs_quota_us`), '150000');
  t.is(read(`${layout.mounts.get('memory')}/${tree.parent}/slappart1/memory.limit_in_bytes`), String(256 << 20));
  t.is(read(`${layout.mounts.get('pids')}/${tree.parent}/slappart1/pids.max`), '64');
  // Reset to unlimited converges.
  tree.setLimits('slappart1', { cpuQuotaPercent: null, pidsMax: null });
  t.is(read(`${dirCpu}/cpu.cfs_quota_us`), '-1');
  t.is(read(`${layout.mounts.get('pids')}/${tree.parent}/slappart1/pids.max`), 'max');
  // A bad value is refused by the kernel with a clear error.
  const error = t.throws(() => native().cgroupWrite(`${layout.mounts.get('pids')}/${tree.parent}/slappart1/pids.max`, 'lots'));
  t.regex(error?.message ?? '', /^write .*pids\.max \(lots\): Invalid argument$/);
});

cgroup2Only('unified layout (cgroup2): create, add a pid, usage, remove', async (t) => {
  await exercise(t, unifiedLayout(unifiedRoot));
});

rootOnly('the addon reports the filesystem type of cgroup mounts', (t) => {
  const type = native().cgroupFsType('/sys/fs/cgroup');
  t.true(['cgroup2', 'tmpfs'].includes(type));
  t.is(native().cgroupFsType('/proc'), 'other');
  const missing = t.throws(() => native().cgroupFsType('/nonexistent/cgroup'));
  t.is((missing as NodeJS.ErrnoException).code, 'ENOENT');
  t.throws(() => native().cgroupMake('relative/path'), { instanceOf: TypeError });
});

rootOnly('under ip netns exec (a fresh sysfs, empty /sys/fs/cgroup) the hierarchy is found anyway, and it is the host\'s', async (t) => {
  const netns = createNetns(t);
  const hostLayout = detectLayout();
  const tree = new CgroupTree(hostLayout, testName('slapos-test-'));
  t.teardown(() => cleanup(tree, ['slappart0']));
  const layoutUrl = JSON.stringify(new URL('../../src/cgroup/layout.js', import.meta.url).href);
  const groupUrl = JSON.stringify(new URL('../../src/cgroup/group.js', import.meta.url).href);
  const seen = jsonInNetns<{ empty: boolean; kind: string; dirs: string[]; created: boolean }>(netns, `
    const fs = await import('node:fs');
    const { detectLayout } = await import(${layoutUrl});
    const { CgroupTree } = await import(${groupUrl});
    const empty = fs.readdirSync('/sys/fs/cgroup').length === 0;
    const layout = detectLayout();
    const tree = new CgroupTree(layout, ${JSON.stringify(tree.parent)});
    const created = tree.create('slappart0');
    console.log(JSON.stringify({ empty, kind: layout.kind, dirs: tree.directories('slappart0'), created }));`);
  t.true(seen.empty, 'ip netns exec hides the host\'s /sys/fs/cgroup');
  t.is(seen.kind, hostLayout.kind);
  t.true(seen.created);
  t.true(seen.dirs.every((d) => d.startsWith('/proc/')), seen.dirs.join(' '));
  // The group made from inside the namespace is the host's group.
  for (const dir of groupDirectories(hostLayout, `${tree.parent}/slappart0`)) t.true(existsSync(dir), dir);
  t.true(tree.exists('slappart0'));
});
