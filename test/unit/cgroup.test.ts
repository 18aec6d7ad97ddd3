import test from 'ava';
import { v1MountsFromMountinfo, groupDirectories, type CgroupLayout } from '../../src/cgroup/layout.js';
import { keyedValues, parseBlkioV1, parseIoStatV2, usageFromContents, usageSources } from '../../src/cgroup/counters.js';
import { CgroupControllerMissing, planLimitWrites } from '../../src/cgroup/limits.js';
import { freezeKill, killMethod, type FreezerIo } from '../../src/cgroup/kill.js';

// Lines from this project's CI machines (hybrid) plus a co-mounted cpu,cpuacct as on older Debian.
const MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
37 31 0:34 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
38 31 0:35 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
39 31 0:36 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
40 23 0:37 /sub /mnt/bind rw,relatime - cgroup cgroup rw,memory`;

const hybrid: CgroupLayout = { kind: 'hybrid', mounts: v1MountsFromMountinfo(MOUNTINFO) };
const unified: CgroupLayout = { kind: 'unified', root: '/sys/fs/cgroup', controllers: new Set(['cpu', 'memory', 'pids', 'io']) };

test('v1 mounts are read from mountinfo; bind mounts of a sub-tree are ignored', (t) => {
  t.deepEqual(Object.fromEntries(hybrid.kind === 'hybrid' ? hybrid.mounts : []), {
    cpu: '/sys/fs/cgroup/cpu,cpuacct',
    cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
    memory: '/sys/fs/cgroup/memory',
    blkio: '/sys/fs/cgroup/blkio',
    pids: '/sys/fs/cgroup/pids',
  });
  t.deepEqual(groupDirectories(hybrid, 'slapos/slappart0'), [
    '/sys/fs/cgroup/cpu,cpuacct/slapos/slappart0',
    '/sys/fs/cgroup/memory/slapos/slappart0',
    '/sys/fs/cgroup/blkio/slapos/slappart0',
    '/sys/fs/cgroup/pids/slapos/slappart0',
  ]);
  t.deepEqual(groupDirectories(unified, 'slapos/slappart0'), ['/sys/fs/cgroup/slapos/slappart0']);
});

test('mount points with escaped spaces are decoded', (t) => {
  const mounts = v1MountsFromMountinfo('1 2 0:3 / /sys/fs/my\\040cgroup rw - cgroup cgroup rw,memory');
  t.is(mounts.get('memory'), '/sys/fs/my cgroup');
});

test('limits: v2 files', (t) => {
  t.deepEqual(planLimitWrites(unified, 'slapos/p0', { cpuWeight: 50, cpuQuotaPercent: 150, memoryMax: 1024, pidsMax: 10 }), [
    { file: '/sys/fs/cgroup/slapos/p0/cpu.weight', value: '50' },
    { file: '/sys/fs/cgroup/slapos/p0/cpu.max', value: '150000 100000' },
    { file: '/sys/fs/cgroup/slapos/p0/memory.max', value: '1024' },
    { file: '/sys/fs/cgroup/slapos/p0/pids.max', value: '10' },
  ]);
  t.deepEqual(planLimitWrites(unified, 'slapos/p0', { cpuQuotaPercent: null, memoryMax: null, pidsMax: null, cpuWeight: null }).map((w) => w.value), [
    '100', 'max 100000', 'max', 'max',
  ]);
  t.deepEqual(planLimitWrites(unified, 'slapos/p0', {}), [], 'undefined keys are left alone');
});

test('limits: v1 files', (t) => {
  t.deepEqual(planLimitWrites(hybrid, 'slapos/p0', { cpuWeight: 200, cpuQuotaPercent: 50, memoryMax: null, pidsMax: 64 }), [
    { file: '/sys/fs/cgroup/cpu,cpuacct/slapos/p0/cpu.shares', value: '2048' },
    { file: '/sys/fs/cgroup/cpu,cpuacct/slapos/p0/cpu.cfs_period_us', value: '100000' },
    { file: '/sys/fs/cgroup/cpu,cpuacct/slapos/p0/cpu.cfs_quota_us', value: '50000' },
    { file: '/sys/fs/cgroup/memory/slapos/p0/memory.limit_in_bytes', value: '-1' },
    { file: '/sys/fs/cgroup/pids/slapos/p0/pids.max', value: '64' },
  ]);
});

test('a limit whose controller is missing is a clear error', (t) => {
  const bare: CgroupLayout = { kind: 'unified', root: '/sys/fs/cgroup/unified', controllers: new Set(['hugetlb']) };
  const error = t.throws(() => planLimitWrites(bare, 'x', { memoryMax: 1 }), { instanceOf: CgroupControllerMissing });
  t.regex(error?.message ?? '', /controller "memory" is not available in the cgroup2 hierarchy at \/sys\/fs\/cgroup\/unified/);
  const noPids: CgroupLayout = { kind: 'hybrid', mounts: new Map([['memory', '/m']]) };
  t.throws(() => planLimitWrites(noPids, 'x', { pidsMax: 1 }), { message: /"pids" is not available as a cgroup v1 hierarchy/ });
});

test('counter files parse on both layouts', (t) => {
  t.deepEqual([...keyedValues('usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n')], [['usage_usec', 1500], ['user_usec', 1000], ['system_usec', 500]]);
  t.deepEqual(parseIoStatV2('8:0 rbytes=100 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n253:0 rbytes=5 wbytes=1 rios=1 wios=1\n'), { ioReadBytes: 105, ioWriteBytes: 21 });
  t.deepEqual(parseBlkioV1('8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:0 Total 4608\n8:16 Read 4\nTotal 4612\n'), { ioReadBytes: 4100, ioWriteBytes: 512 });

  const v2 = usageSources(unified, 'slapos/p0');
  t.deepEqual(usageFromContents(v2, ['usage_usec 42\n', '1000\n', null, '8:0 rbytes=7 wbytes=8\n', '3\n']), {
    cpuUsec: 42, memoryBytes: 1000, memoryPeakBytes: null, ioReadBytes: 7, ioWriteBytes: 8, pids: 3,
  });
  const v1 = usageSources(hybrid, 'slapos/p0');
  t.is(v1[0]?.file, '/sys/fs/cgroup/cpu,cpuacct/slapos/p0/cpuacct.usage');
  t.deepEqual(usageFromContents(v1, ['2500000\n', '4096\n', '8192\n', '', '1\n']), {
    cpuUsec: 2500, memoryBytes: 4096, memoryPeakBytes: 8192, ioReadBytes: 0, ioWriteBytes: 0, pids: 1,
  });
});

test('kill method: cgroup.kill on v2, the freezer on v1 where the group has one, else signal rounds', (t) => {
  t.is(killMethod(true, false), 'cgroup.kill');
  t.is(killMethod(true, true), 'cgroup.kill');
  t.is(killMethod(false, true), 'freezer');
  t.is(killMethod(false, false), 'signals');
});

/** A v1 group as freezeKill sees it: tasks that fork while thawed, die when thawed after SIGKILL. */
function fakeGroup(options: { forksPerRound: number; freezingRounds?: number }) {
  const steps: string[] = [];
  let tasks = [101, 102];
  let frozen = false;
  let next = 200;
  let clock = 0;
  let pendingKill = new Set<number>();
  let stillFreezing = options.freezingRounds ?? 0;
  const io: FreezerIo = {
    pids: () => {
      // Living thawed tasks keep forking (the attack); frozen ones cannot.
      if (!frozen && tasks.length > 0) for (let i = 0; i < options.forksPerRound; i++) tasks.push(next++);
      return [...tasks];
    },
    freeze: () => { steps.push('freeze'); frozen = true; },
    thaw: () => {
      steps.push('thaw');
      frozen = false;
      tasks = tasks.filter((p) => !pendingKill.has(p)); // SIGKILL delivered on thaw
      pendingKill = new Set();
    },
    state: () => {
      if (stillFreezing > 0) { stillFreezing -= 1; return 'FREEZING'; }
      return frozen ? 'FROZEN' : 'THAWED';
    },
    signalAll: () => {
      steps.push(frozen ? 'signal (frozen)' : 'signal (THAWED!)');
      for (const p of tasks) pendingKill.add(p);
      return tasks.length;
    },
    sleep: async (ms) => { clock += ms; },
    now: () => clock,
  };
  return { io, steps, left: () => tasks };
}

test('freezer kill: freeze, wait for FROZEN, signal every task, thaw; a group forking between reads is emptied in one round', async (t) => {
  const group = fakeGroup({ forksPerRound: 3, freezingRounds: 2 });
  const result = await freezeKill(group.io, 5_000);
  t.deepEqual(result.left, []);
  t.deepEqual(group.steps, ['freeze', 'signal (frozen)', 'thaw'], 'signals only while frozen, thawed after');
  t.deepEqual(group.left(), []);
  t.is(result.killed, 5, 'the two tasks and the three forked before the freeze');
});

test('freezer kill: never left frozen, also when signalling throws; a stuck FREEZING is waited for a bounded time', async (t) => {
  const group = fakeGroup({ forksPerRound: 0, freezingRounds: 1_000_000 });
  const result = await freezeKill(group.io, 60_000);
  t.deepEqual(result.left, [], 'signalled after FREEZE_WAIT_MS even though never FROZEN');
  t.deepEqual(group.steps, ['freeze', 'signal (frozen)', 'thaw']);
  const failing = fakeGroup({ forksPerRound: 0 });
  failing.io.signalAll = () => { throw new Error('pidfd failed'); };
  await t.throwsAsync(freezeKill(failing.io, 5_000), { message: 'pidfd failed' });
  t.deepEqual(failing.steps, ['freeze', 'thaw']);
});

test('freezer kill: gives up at the deadline with the tasks left', async (t) => {
  const group = fakeGroup({ forksPerRound: 0 });
  group.io.signalAll = () => 0; // tasks that never die (uninterruptible)
  const result = await freezeKill(group.io, 100);
  t.deepEqual(result.left, [101, 102]);
  t.is(group.steps.filter((s) => s === 'freeze').length, group.steps.filter((s) => s === 'thaw').length);
});
