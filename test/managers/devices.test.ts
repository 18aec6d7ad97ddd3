// devperm, the block device pool and the routable IPv4 pool, and cpuset, for
// real: a loop device the test attaches (and detaches), an address on the
// loopback of a namespace the test creates, a process pinned in a cpuset
// group under a test-only parent.
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Cpuset } from '../../src/cgroup/cpuset.js';
import { detectLayout } from '../../src/cgroup/layout.js';
import { Managers } from '../../src/managers/index.js';
import { applyPools, readPools, releasePools } from '../../src/managers/pools.js';
import type { ManagerSettings } from '../../src/managers/settings.js';
import { runManagers } from '../../src/instance/managers-hook.js';
import type { ComputerPartition } from '../../src/slap/shapes.js';
import { memoryLogger } from '../ops/helpers.js';
import { createNetns, createUser, isRoot, jsonInNetns, repoRoot, run, serialUnless, tempDir, testName, type TestUser } from '../helpers/system.js';

const hasLoop = isRoot && spawnSync('losetup', ['--version']).status === 0;
const serial = serialUnless(!isRoot ? 'needs root' : !hasLoop ? 'no losetup' : null);
const cpus = isRoot ? readFileSync('/sys/fs/cgroup/cpuset/cpuset.cpus', { encoding: 'utf8', flag: 'r' }).trim() : '';
const hybrid = isRoot && detectLayout().kind === 'hybrid';
const cpusetSerial = serialUnless(!isRoot ? 'needs root' : !hybrid ? 'not the hybrid layout (planCpusetWrites covers v2)' : cpus === '0' ? 'one CPU: no exclusive pool' : null);

function base(root: string, extra: Partial<ManagerSettings>): ManagerSettings {
  return {
    instanceRoot: root, enabled: [], powerUsers: new Set(), allowedDisks: [], firewall: undefined, nftCommand: ['/bin/false'],
    blockDevices: [], routableIpv4: [], ipv4Interface: undefined, timeoutMs: 10_000, ...extra,
  };
}

function loopDevice(t: ExecutionContext): string {
  const dir = tempDir(t, 'slapos-loop-');
  const file = path.join(dir, 'disk.img');
  writeFileSync(file, Buffer.alloc(1 << 20));
  const device = run('losetup', ['--find', '--show', file]).trim();
  t.teardown(() => { spawnSync('losetup', ['-d', device]); });
  return device;
}

function partitionDir(root: string, id: string, user: TestUser): string {
  const dir = path.join(root, id);
  mkdirSync(path.join(dir, '.slapgrid', 'log'), { recursive: true });
  for (const d of [dir, path.join(dir, '.slapgrid'), path.join(dir, '.slapgrid', 'log')]) chownSync(d, user.uid, user.gid);
  chmodSync(dir, 0o750);
  return dir;
}

const pass = (managers: Managers, root: string, id: string, log: ReturnType<typeof memoryLogger>['log']) =>
  runManagers(managers, root, id, () => ({ parameters: { ip_list: [] } }) as unknown as ComputerPartition, log);

serial('devperm: an allowed loop device goes to the partition user, anything else is refused; destruction gives it back to root', async (t) => {
  const root = tempDir(t, 'slapos-devperm-');
  chmodSync(root, 0o755);
  const device = loopDevice(t);
  const other = loopDevice(t);
  const user = createUser(t);
  const dir = partitionDir(root, 'slappart0', user);
  const { log, lines } = memoryLogger();
  const managers = new Managers(base(root, { enabled: ['devperm'], allowedDisks: [device] }), { log });
  t.teardown(() => { try { chownSync(device, 0, 6); chownSync(other, 0, 6); } catch { /* detached */ } });

  // As the reference's releases write it.
  writeFileSync(path.join(dir, '.slapos-disk-permission'), JSON.stringify([{ disk: device }]));
  await pass(managers, root, 'slappart0', log);
  t.is(statSync(device).uid, user.uid);
  t.is(statSync(device).mode & 0o777, 0o660);

  for (const request of [[{ disk: other }], [{ disk: '/dev/../etc/shadow' }], [{ disk: path.join(dir, 'x') }], ['not an object']]) {
    writeFileSync(path.join(dir, '.slapos-disk-permission'), JSON.stringify(request));
    await pass(managers, root, 'slappart0', log);
    t.is(statSync(other).uid, 0, JSON.stringify(request));
    t.is(statSync(device).uid, user.uid, 'what was given stays');
    t.truthy(managers.status()[0]?.refused[0], JSON.stringify(request));
  }
  t.true(lines.some((l) => /not in allowed disk list/.test(l)));

  await managers.destroy('slappart0');
  t.is(statSync(device).uid, 0);
});

serial('pools: format gives a loop device and a routable IPv4 (in a namespace) to each partition; destruction returns them', async (t) => {
  const root = tempDir(t, 'slapos-pools-');
  chmodSync(root, 0o755);
  const device = loopDevice(t);
  const user0 = createUser(t);
  const user1 = createUser(t);
  t.teardown(() => { try { chownSync(device, 0, 6); } catch { /* detached */ } });
  const { log } = memoryLogger();
  const settings = base(root, { blockDevices: [device] });
  const pools = await applyPools(settings, [{ id: 'slappart0', uid: user0.uid }, { id: 'slappart1', uid: user1.uid }], undefined, log);
  t.deepEqual(pools.blockDevice, { slappart0: device });
  t.is(statSync(device).uid, user0.uid);
  // Again: nothing moves.
  await applyPools(settings, [{ id: 'slappart0', uid: user0.uid }, { id: 'slappart1', uid: user1.uid }], undefined, log);
  t.is(statSync(device).uid, user0.uid);
  await releasePools(settings, 'slappart0', log);
  t.is(statSync(device).uid, 0);
  t.deepEqual(readPools(root).blockDevice, {});

  // The address side runs in a namespace (netlink acts on the caller's namespace).
  const ns = createNetns(t);
  const url = (p: string) => JSON.stringify(new URL(`file://${path.join(repoRoot, 'dist', 'src', p)}`).href);
  const code = (what: 'apply' | 'release') => `
    const { applyPools, releasePools } = await import(${url('managers/pools.js')});
    const log = { info() {}, warn() {}, debug() {}, error() {} };
    const s = { instanceRoot: ${JSON.stringify(root)}, enabled: [], powerUsers: new Set(), allowedDisks: [], firewall: undefined, nftCommand: [],
      blockDevices: [], routableIpv4: ['10.78.0.1', '10.78.0.2'], ipv4Interface: 'lo', timeoutMs: 10000 };
    ${what === 'apply'
      ? `const p = await applyPools(s, [{ id: 'slappart0', uid: ${user0.uid} }, { id: 'slappart1', uid: ${user1.uid} }], { interfaceName: 'lo' }, log); console.log(JSON.stringify(p));`
      : `await releasePools(s, 'slappart1', log); console.log('{}');`}`;
  const assigned = jsonInNetns<{ ipv4: Record<string, string> }>(ns, code('apply'));
  t.deepEqual(assigned.ipv4, { slappart0: '10.78.0.1', slappart1: '10.78.0.2' });
  const addrs = () => run('ip', ['-n', ns, '-4', 'addr', 'show', 'dev', 'lo']);
  t.regex(addrs(), /10\.78\.0\.1\/32/);
  t.regex(addrs(), /10\.78\.0\.2\/32/);
  jsonInNetns(ns, code('release'));
  t.notRegex(addrs(), /10\.78\.0\.2\/32/);
  t.regex(addrs(), /10\.78\.0\.1\/32/);
  t.deepEqual(readPools(root).ipv4, { slappart0: '10.78.0.1' });
});

cpusetSerial('cpuset: a power user\'s own process is pinned on an exclusive CPU (v1 cpuset); others\' pids and non-power users refused', async (t) => {
  const root = tempDir(t, 'slapos-cpuset-');
  chmodSync(root, 0o755);
  const user = createUser(t);
  const dir = partitionDir(root, 'slappart0', user);
  const parent = testName('sltcs');
  const cpuset = new Cpuset(detectLayout(), parent);
  const child = spawn('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', 'sleep', '60'], { stdio: 'ignore' });
  t.teardown(() => { child.kill('SIGKILL'); });
  await new Promise((r) => setTimeout(r, 200));
  const pid = child.pid as number;
  const { log } = memoryLogger();
  const managers = new Managers(base(root, { enabled: ['cpuset'], powerUsers: new Set([user.name]) }), { log, cpuset });
  t.teardown(async () => {
    await managers.destroy('slappart0').catch(() => undefined);
    spawnSync('rmdir', [`/sys/fs/cgroup/cpuset/${parent}`]);
  });
  writeFileSync(path.join(dir, '.slapos-cpu-exclusive'), `${pid}\n`);
  await pass(managers, root, 'slappart0', log);
  const allowed = () => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  const pool = cpuset.hostCpus().slice(1);
  t.is(allowed(), String(pool[0]));
  t.deepEqual(managers.status()[0]?.cpuset?.cpus, [pool[0]]);

  // Someone else's pid (ours, root's): refused, nothing changes.
  writeFileSync(path.join(dir, '.slapos-cpu-exclusive'), `${process.pid}\n`);
  await pass(managers, root, 'slappart0', log);
  t.regex(managers.status()[0]?.refused[0]?.reason ?? '', /not the partition's own/);
  t.not(/Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${process.pid}/status`, 'utf8'))?.[1], String(pool[0]));

  // Not a power user: refused.
  const strict = new Managers(base(root, { enabled: ['cpuset'] }), { log, cpuset });
  await pass(strict, root, 'slappart0', log);
  t.regex(strict.status()[0]?.refused[0]?.reason ?? '', /not allowed to modify cpuset/);

  await managers.destroy('slappart0');
  t.not(allowed(), String(pool[0]), 'back in the root cpuset');
});
