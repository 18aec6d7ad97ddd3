// The plan is pure: synthetic observations in, steps out.
import test from 'ava';
import { parseConfig } from '../../src/config/load.js';
import { resolveSettings } from '../../src/format/settings.js';
import { makePlan } from '../../src/format/plan.js';
import { FormatError } from '../../src/format/plan-network.js';
import { parse6 } from '../../src/format/addressing.js';
import { parseDbFile, parseLoginDefs } from '../../src/users/db.js';
import type { Observed } from '../../src/format/observe.js';

function settings(extra = '') {
  const cfg = `[slapos]\ncomputer_id = C\nmaster_url = http://127.0.0.1:1\nsoftware_root = /opt/s\ninstance_root = /srv/i\n\n` +
    `[slapformat]\npartition_amount = 2\ninterface_name = br0\nipv4_local_network = 10.0.0.0/24\ncomputer_xml = /x/slapos.xml\n${extra}`;
  return resolveSettings(parseConfig(cfg, 'test.cfg'), {}, () => {});
}

function observed(kind: string | undefined, extra: Partial<Observed> = {}): Observed {
  return {
    users: { passwd: parseDbFile('root:x:0:0::/root:/bin/sh\n'), group: parseDbFile('root:x:0:\n'), shadow: parseDbFile(''), gshadow: parseDbFile('') },
    idRanges: parseLoginDefs(''),
    links: [
      { index: 1, name: 'lo', up: true, lowerUp: true },
      { index: 2, name: 'br0', ...(kind ? { kind } : {}), up: true, lowerUp: true },
    ],
    addresses: [{ index: 2, family: 10, value: parse6('fd00:1::1'), prefixlen: 64, tentative: false, dadfailed: false, noprefixroute: false }],
    routes: [],
    taps: new Map(),
    paths: new Map(),
    files: new Map(),
    dirEntries: new Map(),
    surplus: [],
    nonlocalBind: '1',
    osType: '[]',
    ...extra,
  } as Observed;
}

const kinds = (steps: { kind: string }[]) => [...new Set(steps.map((s) => s.kind))];

test('bridge interface: taps enslaved, no tap addresses; users, dirs, addresses, ranges, files', (t) => {
  const plan = makePlan(settings(), observed('bridge'), 20000);
  t.is(plan.mode, 'bridge');
  t.deepEqual(kinds(plan.steps), ['users', 'mkdir', 'chown', 'tap', 'link-master', 'link-up', 'addr-add', 'route-add', 'write-file']);
  t.deepEqual(plan.steps.filter((s) => s.kind === 'addr-add').map((s) => (s as { address: string }).address), ['10.0.0.1', 'fd00:1::2', '10.0.0.2', 'fd00:1::3']);
  t.like(plan.owners, { slapuser0: { uid: 998, gid: 998 }, slapsoft: { uid: 999 } });
});

test('route mode: taps get an address, a gateway route and a range route', (t) => {
  const plan = makePlan(settings('tap_mode = route\n'), observed(undefined), 20000);
  t.is(plan.mode, 'route');
  const tap0 = plan.steps.filter((s) => 'dev' in s && s.dev === 'slaptap0');
  t.deepEqual(tap0, [
    { kind: 'addr-add', dev: 'slaptap0', address: 'fd00:1::8001:ffff:ffff:ffff', prefixlen: 80, noprefixroute: true },
    { kind: 'route-add', dst: 'fd00:1::8001:0:0:1/128', dev: 'slaptap0' },
    { kind: 'route-add', dst: 'fd00:1:0:0:8001::/80', dev: 'slaptap0', gateway: 'fd00:1::8001:0:0:1' },
  ]);
});

test('refusals name the thing: bridge mode on a non-bridge, no IPv6, surplus partitions with data', (t) => {
  t.throws(() => makePlan(settings('tap_mode = bridge\n'), observed('veth'), 1), { instanceOf: FormatError, message: /tap_mode = bridge needs a bridge, and interface_name br0 is a veth, not a bridge: set interface_name to a bridge, or tap_mode = route$/ });
  t.throws(() => makePlan(settings(), observed('bridge', { addresses: [] }), 1), { instanceOf: FormatError, message: /br0 has no global IPv6/ });
  const shrink = observed('bridge', { surplus: [2, 3], dirEntries: new Map([['/srv/i/slappart2', ['.slapos-resource']], ['/srv/i/slappart3', ['.slapos-resource', 'srv']]]) });
  t.throws(() => makePlan(settings(), shrink, 1), { instanceOf: FormatError, message: /slappart3 still hold data/ });
});

test('bridged taps on a non-bridge interface_name: the real reason, not the advice the file already follows', (t) => {
  const base = observed('veth');
  const links = [...base.links, { index: 3, name: 'slaptap0', kind: 'tun', master: 4, up: true, lowerUp: true }, { index: 4, name: 'br9', kind: 'bridge', up: true, lowerUp: true }];
  const error = t.throws(() => makePlan(settings('tap_mode = route\n'), { ...base, links } as Observed, 1), { instanceOf: FormatError });
  t.regex(String(error?.message), /this node's taps are bridged \(slaptap0 has a master device\), so format keeps bridge mode although tap_mode = route, but interface_name br0 is a veth, not a bridge/);
  t.regex(String(error?.message), /set interface_name to the bridge the taps are on, or release the taps/);
  t.notRegex(String(error?.message), /use tap_mode = route|or tap_mode = route/, 'no advice to write what the file says');
});

test('cgroup limits: configured ones are written, removed ones reset to unlimited on existing groups, new groups start unlimited', (t) => {
  const layout = { kind: 'hybrid' as const, mounts: new Map([['cpu', '/cg/cpu'], ['memory', '/cg/memory'], ['pids', '/cg/pids']] as const) };
  const file = (c: string, f: string, i = 0) => `/cg/${c}/slapos/slappart${i}/${f}`;
  const limited = new Map<string, string | null>();
  for (const i of [0, 1]) {
    limited.set(file('memory', 'memory.limit_in_bytes', i), '64000000\n'); // 64M is decimal, as the reference
    limited.set(file('pids', 'pids.max', i), '100\n');
    limited.set(file('cpu', 'cpu.shares', i), '1024\n');
    limited.set(file('cpu', 'cpu.cfs_period_us', i), '100000\n');
    limited.set(file('cpu', 'cpu.cfs_quota_us', i), '-1\n');
  }
  const groups = (values: Map<string, string | null>, exists = true) => ({
    cgroup: { layout, existing: new Map([['slappart0', exists], ['slappart1', exists]]), values },
  });
  const writes = (plan: { steps: { kind: string }[] }) => plan.steps.filter((s): s is { kind: 'cgroup-write'; file: string; value: string } => s.kind === 'cgroup-write').map((s) => [s.file, s.value]);
  // Still configured: nothing to write.
  t.deepEqual(writes(makePlan(settings('partition_memory_max = 64M\npartition_pids_max = 100\n'), observed('bridge', groups(limited)), 1)), []);
  // Keys removed from slapos.cfg: both limits go back to unlimited.
  t.deepEqual(writes(makePlan(settings(), observed('bridge', groups(limited)), 1)), [
    [file('memory', 'memory.limit_in_bytes'), '-1'], [file('pids', 'pids.max'), 'max'],
    [file('memory', 'memory.limit_in_bytes', 1), '-1'], [file('pids', 'pids.max', 1), 'max'],
  ]);
  // Unlimited as the kernel reads it back (v1 memory: the page counter maximum): converged.
  const unlimited = new Map(limited);
  for (const i of [0, 1]) {
    unlimited.set(file('memory', 'memory.limit_in_bytes', i), '9223372036854771712\n');
    unlimited.set(file('pids', 'pids.max', i), 'max\n');
  }
  t.deepEqual(writes(makePlan(settings(), observed('bridge', groups(unlimited)), 1)), []);
  // New groups: only what is configured.
  const fresh = makePlan(settings('partition_pids_max = 100\n'), observed('bridge', groups(new Map(), false)), 1);
  t.deepEqual(writes(fresh), [[file('pids', 'pids.max'), '100'], [file('pids', 'pids.max', 1), '100']]);
});
