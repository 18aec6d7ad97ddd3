// slapos node collect for real: cgroups on both layouts, a bridged tap with a
// reader in a test namespace, disk usage, the store's and status file's modes.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCollect } from '../../src/accounting/collect.js';
import { HARDWARE_SCHEMA, type HardwareStatus } from '../../src/accounting/hardware.js';
import { storePath, UsageStore } from '../../src/accounting/store.js';
import { detectLayout, unifiedLayout, type CgroupLayout } from '../../src/cgroup/layout.js';
import { native } from '../../src/native/index.js';
import { createNetns, isRoot, repoRoot, run, serialUnless, tempDir } from '../helpers/system.js';
import { log, makeNode } from './helpers.js';

const rootTest = isRoot ? test.serial : test.skip;
const cgroup2Root = native().cgroupFsType('/sys/fs/cgroup') === 'cgroup2' ? '/sys/fs/cgroup' : '/sys/fs/cgroup/unified';
const cgroup2Extra = serialUnless(
  !isRoot ? 'needs root'
    : !existsSync(cgroup2Root) || native().cgroupFsType(cgroup2Root) !== 'cgroup2' ? 'no cgroup2 mount on this machine'
      : detectLayout().kind === 'unified' ? 'the host layout is unified: the host layout test covers it'
        : null);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function exercise(t: import('ava').ExecutionContext, layout: CgroupLayout) {
  const node = makeNode(t, [{ id: 'slappart0' }, { id: 'slappart1' }], layout);
  writeFileSync(path.join(node.partitionPath('slappart0'), 'data'), Buffer.alloc(3 << 20, 7));
  // The burner allocates only once it is in the group: cgroup v1 does not move
  // memory already charged to the group a process came from.
  const child = spawn(process.execPath, ['-e', "process.stdin.once('data', () => { const b = Buffer.alloc(48 << 20, 1); for (;;) { b[0]++; } })"], { stdio: ['pipe', 'ignore', 'ignore'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  node.tree.addProcess('slappart0', child.pid as number);
  child.stdin?.write('go\n');
  await sleep(200);
  const first = await runCollect({ settings: node.settings, log, layout, now: () => 1000 });
  await sleep(800);
  const second = await runCollect({ settings: node.settings, log, layout, now: () => 1060 });
  const byId = (r: typeof first, id: string) => r.samples.find((s) => s.partition === id);
  const busy = (byId(second, 'slappart0')?.cpuUsec ?? 0) - (byId(first, 'slappart0')?.cpuUsec ?? 0);
  t.true(busy > 200_000, `slappart0 burned ${busy} µs in 0.8 s`);
  t.is(byId(second, 'slappart1')?.cpuUsec, 0, 'nothing runs in slappart1');
  if (layout.kind === 'hybrid' || layout.controllers.has('memory')) {
    t.true((byId(second, 'slappart0')?.memoryBytes ?? 0) > 32 << 20);
    t.true((byId(second, 'slappart1')?.memoryBytes ?? 1) < 1 << 20);
    t.true((byId(second, 'slappart0')?.pids ?? 0) >= 1);
  }
  t.true((byId(second, 'slappart0')?.diskBytes ?? 0) >= 3 << 20, 'the 3 MiB file is counted');
  t.deepEqual(first.diskMeasured.sort(), ['slappart0', 'slappart1']);
  t.deepEqual(second.diskMeasured, [], 'not walked again within disk_snapshot_time_cycle');

  const store = new UsageStore(storePath(node.instanceRoot));
  t.is(store.samples('slappart0').length, 2);
  store.close();
  t.is(statSync(path.dirname(storePath(node.instanceRoot))).mode & 0o777, 0o700);
  t.is(statSync(storePath(node.instanceRoot)).mode & 0o777, 0o600);
  t.is(statSync(path.join(node.instanceRoot, 'var')).mode & 0o777, 0o755);
  const status = statSync(node.settings.hardwareStatusFile);
  t.is(status.mode & 0o777, 0o644);
  t.is(status.uid, 0);
  const doc = JSON.parse(readFileSync(node.settings.hardwareStatusFile, 'utf8')) as HardwareStatus;
  t.is(doc.schema, HARDWARE_SCHEMA);
  t.is(doc.partitions.count, 2);
  t.true(doc.cpu.cores >= 1 && doc.memory.total_bytes > 0 && doc.disks.length > 0);
  t.notRegex(JSON.stringify(doc), /slappart0/, 'no per-partition figure in the public document');
}

rootTest('collect: a burner in slappart0\'s cgroup shows in its samples only (host layout)', async (t) => {
  await exercise(t, detectLayout());
});

cgroup2Extra('collect: the same on the cgroup2 hierarchy beside the hybrid layout', async (t) => {
  await exercise(t, unifiedLayout(cgroup2Root));
});

rootTest('collect: traffic through a bridged tap held open by a reader is counted in both directions', async (t) => {
  // Namespace N: bridge + tap (held by a reader that also writes frames) + veth to namespace M.
  const n = createNetns(t);
  const m = createNetns(t);
  const ip = (...args: string[]) => run('ip', args);
  ip('-n', n, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', n, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth1', 'netns', m);
  ip('-n', n, 'link', 'set', 'veth0', 'master', 'br0', 'up');
  ip('-n', n, 'link', 'set', 'br0', 'up');
  ip('-n', m, 'addr', 'add', '10.77.0.1/24', 'dev', 'veth1');
  ip('-n', m, 'link', 'set', 'veth1', 'up');
  const nativeUrl = new URL(`file://${path.join(repoRoot, 'dist', 'src', 'native', 'index.js')}`).href;
  // The reader makes the tap (persist), attaches, sends 20 frames of 100 bytes, then reads until killed.
  const script = `const { native } = await import(${JSON.stringify(nativeUrl)}); const fs = await import('node:fs');
    const n = native(); n.createTap('slaptap0', { type: 'tap', uid: 0, gid: 0 });
    const fd = n.openTap('slaptap0');
    (await import('node:child_process')).execFileSync('ip', ['link', 'set', 'slaptap0', 'master', 'br0', 'up']);
    await new Promise((r) => setTimeout(r, 100));
    const frame = Buffer.alloc(100); frame.fill(0xff, 0, 6); frame.set([2, 0, 0, 0, 0, 1], 6); frame.writeUInt16BE(0x88b5, 12);
    for (let i = 0; i < 20; i++) fs.writeSync(fd, frame);
    console.log('ready');
    const buf = Buffer.alloc(2048); for (;;) { try { fs.readSync(fd, buf); } catch (e) { if (e.code !== 'EAGAIN') throw e; await new Promise((r) => setTimeout(r, 20)); } }`;
  const reader = spawn('ip', ['netns', 'exec', n, process.execPath, '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { reader.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    reader.stdout.on('data', (d: Buffer) => { if (d.toString().includes('ready')) resolve(); });
    reader.on('exit', (code) => reject(new Error(`tap reader exited ${code}`)));
  });
  // Broadcast ARP requests from M cross the bridge into the tap (tap tx = partition in).
  spawnSync('ip', ['netns', 'exec', m, 'ping', '-c', '3', '-i', '0.2', '-W', '1', '10.77.0.2'], { stdio: 'ignore' });

  const sysfs = tempDir(t, 'slapos-sysfs-');
  run('nsenter', [`--net=/run/netns/${n}`, 'mount', '-t', 'sysfs', 'sysfs', sysfs]);
  t.teardown(() => { spawnSync('umount', ['-l', sysfs]); });
  const node = makeNode(t, [{ id: 'slappart0', tap: 'slaptap0' }, { id: 'slappart1', tap: 'slaptap1' }]);
  mkdirSync(path.join(node.instanceRoot, 'var'), { recursive: true });
  const result = await runCollect({ settings: node.settings, log, netRoot: path.join(sysfs, 'class', 'net') });
  const s0 = result.samples.find((s) => s.partition === 'slappart0');
  t.true((s0?.netRxPackets ?? 0) >= 20, `rx packets ${s0?.netRxPackets}`);
  t.true((s0?.netRxBytes ?? 0) >= 2000, `rx bytes ${s0?.netRxBytes}: the frames the partition sent`);
  t.true((s0?.netTxPackets ?? 0) >= 1, `tx packets ${s0?.netTxPackets}: ARP broadcasts delivered to the partition`);
  const s1 = result.samples.find((s) => s.partition === 'slappart1');
  t.is(s1?.netRxBytes, null, 'a missing tap gives no counter, not zero');
});
