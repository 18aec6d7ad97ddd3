// Adoption is pure: which tap mode an existing node has, and how recorded
// allocations (ranges, tap and tun addressing, per-partition records) are read
// back, for layouts other than the recorded reference node (another prefix
// length, create_tun, more partitions).
import test from 'ava';
import { parseConfig } from '../../src/config/load.js';
import { resolveSettings } from '../../src/format/settings.js';
import {
  decideTapMode, masterEntry, ModeConflictError, partitionRecord, prefixlenOf6, resourceEntry, storedRange, storedTapIpv6, storedTun,
} from '../../src/format/adopt.js';
import { format6, parse6 } from '../../src/format/addressing.js';
import { AF_INET6, TABLE_MAIN, type LinkState } from '../../src/network/netlink.js';
import type { Observed } from '../../src/format/observe.js';
import { makePlan } from '../../src/format/plan.js';
import { parseDbFile, parseLoginDefs } from '../../src/users/db.js';

function settings(extra = '', amount = 4) {
  const cfg = `[slapos]\ncomputer_id = C\nmaster_url = http://127.0.0.1:1\nsoftware_root = /opt/s\ninstance_root = /srv/i\n\n` +
    `[slapformat]\npartition_amount = ${amount}\ninterface_name = br0\ntap_base_name = tap\nipv4_local_network = 10.0.0.0/16\ncomputer_xml = /x/slapos.xml\n${extra}`;
  return resolveSettings(parseConfig(cfg, 'test.cfg'), {}, () => {});
}

const br0: LinkState = { index: 2, name: 'br0', kind: 'bridge', up: true, lowerUp: true };
const tap = (i: number, master?: number): LinkState => ({ index: 10 + i, name: `tap${i}`, kind: 'tun', up: true, lowerUp: false, ...(master ? { master } : {}) });

function observed(links: LinkState[], extra: Partial<Observed> = {}): Observed {
  return { links: [br0, ...links], addresses: [], routes: [], ...extra } as unknown as Observed;
}

test('tap mode: a new node follows tap_mode, else the kind of interface_name', (t) => {
  t.deepEqual(decideTapMode(settings(), observed([]), br0, []), { mode: 'bridge', source: 'default' });
  t.deepEqual(decideTapMode(settings('tap_mode = route\n'), observed([]), br0, []), { mode: 'route', source: 'config' });
  // Taps that exist but carry nothing (a creation cut short), or only what the kernel adds with carrier, are no evidence.
  t.is(decideTapMode(settings(), observed([tap(0)]), br0, []).mode, 'bridge');
  const linkLocal = observed([tap(0)], {
    addresses: [{ index: 10, family: AF_INET6, value: parse6('fe80::1'), prefixlen: 64, tentative: false, dadfailed: false, noprefixroute: false }],
    routes: [{ family: AF_INET6, table: TABLE_MAIN, type: 'UNICAST', dst: parse6('fe80::'), dstLen: 64, oif: 10 }],
  } as Partial<Observed>);
  t.is(decideTapMode(settings(), linkLocal, br0, []).mode, 'bridge');
});

test('tap mode: routed taps (an address, a route or a recorded tap IPv6) keep a node routed even on a bridge; a contradicting tap_mode is reported', (t) => {
  const withRoute = observed([tap(0), tap(1)], { routes: [{ family: AF_INET6, table: TABLE_MAIN, type: 'UNICAST', dst: 1n, dstLen: 128, oif: 11 }] } as Partial<Observed>);
  t.deepEqual(decideTapMode(settings(), withRoute, br0, []), { mode: 'route', source: 'existing', evidence: ['tap1'] });
  const withAddress = observed([tap(0)], { addresses: [{ index: 10, family: AF_INET6, value: 5n, prefixlen: 80, tentative: true, dadfailed: false, noprefixroute: true }] } as Partial<Observed>);
  const decided = decideTapMode(settings('tap_mode = bridge\n'), withAddress, br0, []);
  t.is(decided.mode, 'route');
  t.regex(decided.contradiction ?? '', /tap_mode = bridge contradicts this node: its taps are routed \(tap0\); keeping route/);
  // No tap yet, but the state file recorded routed taps (the reference always routes).
  const entry = { tap: { name: 'tap3', ipv6_addr: 'fd00::8004:ffff:ffff:ffff', ipv6_netmask: 'ffff:ffff:ffff:ffff:ffff::', ipv6_gateway: 'fd00::8004:0:0:1', ipv6_network: 'fd00::8004:0:0:1/80' } };
  t.is(decideTapMode(settings(), observed([]), br0, [undefined, undefined, undefined, entry]).mode, 'route');
});

test('tap mode: bridged taps keep a node bridged; bridged and routed taps at once are refused', (t) => {
  const bridged = decideTapMode(settings('tap_mode = route\n'), observed([tap(0, 2), tap(1, 2)]), br0, []);
  t.is(bridged.mode, 'bridge');
  t.regex(bridged.contradiction ?? '', /its taps are bridged \(tap0, tap1\)/);
  const mixed = observed([tap(0, 2), tap(1)], { addresses: [{ index: 11, family: AF_INET6, value: 5n, prefixlen: 80, tentative: true, dadfailed: false, noprefixroute: true }] } as Partial<Observed>);
  const error = t.throws(() => decideTapMode(settings(), mixed, br0, []), { instanceOf: ModeConflictError });
  t.regex(error?.message ?? '', /tap0 is bridged and tap1 is routed/);
});

test('recorded allocations are read back as recorded: a /48 base (ranges /64), tuns, netmask forms', (t) => {
  t.is(prefixlenOf6('ffff:ffff:ffff:ffff::'), 64);
  t.is(prefixlenOf6('/96'), 96);
  t.is(prefixlenOf6('ffff:0:ffff::'), undefined);
  const range = storedRange({ ipv6_range: { addr: '2001:db8:1:4001::', netmask: 'ffff:ffff:ffff:ffff::', network: '2001:db8:1:4001::/64', prefixlen: 64 } });
  t.deepEqual(range && { network: format6(range.network), prefixlen: range.prefixlen }, { network: '2001:db8:1:4001::', prefixlen: 64 });
  t.is(storedRange({ ipv6_range: {} }), undefined);
  const tapEntry = { tap: { name: 't0', ipv4_addr: '', ipv6_addr: '2001:db8:1:8001:ffff:ffff:ffff:ffff', ipv6_netmask: 'ffff:ffff:ffff:ffff::', ipv6_gateway: '2001:db8:1:8001::1', ipv6_network: '2001:db8:1:8001::1/64' } };
  const stored = storedTapIpv6(tapEntry);
  t.is(stored?.range.prefixlen, 64);
  t.is(stored?.gateway, parse6('2001:db8:1:8001::1'));
  t.is(stored?.ipv6_network, '2001:db8:1:8001::1/64', 'the recorded text is kept byte for byte');
  t.is(storedTapIpv6({ tap: { name: 't0', ipv6_addr: '' } }), undefined, 'a bridged or tap_ipv6 = false tap records no IPv6');
  // create_tun, 10 partitions: 172.16.0.0/12 cut in /16s; the tun range of kind 3.
  const tun = storedTun({ tun: { name: 'slaptun9', ipv4_addr: '172.25.0.1', ipv4_netmask: '255.255.0.0', ipv4_network: '172.25.0.1/255.255.0.0', ipv6_addr: 'fd00:1::c00a:0:0:1', ipv6_netmask: 'ffff:ffff:ffff:ffff:ffff::', ipv6_network: 'fd00:1::c00a:0:0:1/80' } });
  t.is(tun?.ipv4Prefixlen, 16);
  t.is(tun?.ipv6?.range.prefixlen, 80);
  t.is(storedTun({ tun: null }), undefined);
});

test('the record of a partition: the state file, unless the kernel confirms the partition\'s .slapos-resource instead', (t) => {
  const a = { reference: 'p1', address_list: [{ addr: '10.0.0.7', netmask: '255.255.255.255' }, { addr: 'fd00::3', netmask: 'ffff:ffff:ffff:ffff::' }] };
  const b = { reference: 'p1', address_list: [{ addr: '10.0.0.9', netmask: '255.255.255.255' }, { addr: 'fd00::3', netmask: 'ffff:ffff:ffff:ffff::' }] };
  const liveIs = (x: object) => (entry: object) => entry === x;
  t.deepEqual(partitionRecord('p1', a, b, liveIs(a)), { entry: a });
  t.deepEqual(partitionRecord('p1', a, undefined, liveIs(b)), { entry: a }, 'no other record: the state file, live or not');
  t.deepEqual(partitionRecord('p1', a, b, () => false), { entry: a }, 'neither is live: the state file');
  const older = partitionRecord('p1', a, b, liveIs(b));
  t.is(older.entry, b);
  t.regex(older.note ?? '', /p1: the state file records 10\.0\.0\.7, fd00::3, but the kernel has 10\.0\.0\.9, fd00::3/);
  const lost = partitionRecord('p1', undefined, b, liveIs(b));
  t.is(lost.entry, b);
  t.regex(lost.note ?? '', /not in the state file; its addresses \(10\.0\.0\.9, fd00::3\) are taken from the partition's \.slapos-resource and the kernel/);
  t.deepEqual(partitionRecord('p1', undefined, undefined, () => true), {});
  t.is(resourceEntry(JSON.stringify(b), 'p2'), undefined, 'a .slapos-resource naming another partition is not used');
  t.is(resourceEntry('{not json', 'p1'), undefined);
  t.deepEqual(resourceEntry(JSON.stringify(b), 'p1'), b);
});

test('the master\'s ip_list as a record: first IPv4 and first IPv6, used after the .slapos-resource, when the kernel confirms it or nothing else exists', (t) => {
  t.deepEqual(masterEntry('p0', [['tap0', '10.0.0.5'], ['tap0', 'fd00::2'], ['tap0', '10.0.0.99']]),
    { reference: 'p0', address_list: [{ addr: '10.0.0.5', netmask: '255.255.255.255' }, { addr: 'fd00::2', netmask: '' }] });
  t.is(masterEntry('p0', [['tap0', 'fd00::2']]), undefined, 'no IPv4: not a record');
  const master = masterEntry('p0', [['tap0', '10.0.0.5'], ['tap0', 'fd00::2']]);
  const resource = { reference: 'p0', address_list: [{ addr: '10.0.0.6' }, { addr: 'fd00::2' }] };
  t.is(partitionRecord('p0', undefined, resource, (e) => e === master, master).entry, master);
  t.regex(partitionRecord('p0', undefined, undefined, () => false, master).note ?? '', /taken from the master$/);
  t.is(partitionRecord('p0', undefined, resource, () => false, master).entry, resource);
});

test('plan: a partition recorded with the reference\'s random fallbacks (range, tap) and tap IPv4 fields keeps them byte for byte, routed, on a bridge', (t) => {
  const s = settings('', 1);
  const recorded = {
    address_list: [{ addr: '10.0.77.3', netmask: '255.255.255.255' }, { addr: 'fd00:1::2', netmask: 'ffff:ffff:ffff:ffff::' }],
    external_storage_list: [],
    ipv6_range: { addr: 'fd00:1:0:0:4d2f::', netmask: 'ffff:ffff:ffff:ffff:ffff::', network: 'fd00:1:0:0:4d2f::/80', prefixlen: 80 },
    path: '/srv/i/slappart0',
    reference: 'slappart0',
    tap: {
      ipv4_addr: '10.8.0.2', ipv4_gateway: '10.8.0.1', ipv4_netmask: '255.255.255.0', ipv4_network: '10.8.0.0',
      ipv6_addr: 'fd00:1::b3c1:ffff:ffff:ffff', ipv6_gateway: 'fd00:1::b3c1:0:0:1', ipv6_netmask: 'ffff:ffff:ffff:ffff:ffff::', ipv6_network: 'fd00:1::b3c1:0:0:1/80', name: 'tap0',
    },
    tun: null,
    user: { additional_group_list: ['slapsoft'], name: 'slapuser0', path: '/srv/i/slappart0', shell: '/bin/sh' },
  };
  const obs = {
    users: { passwd: parseDbFile('root:x:0:0::/root:/bin/sh\n'), group: parseDbFile('root:x:0:\n'), shadow: parseDbFile(''), gshadow: parseDbFile('') },
    idRanges: parseLoginDefs(''),
    links: [{ index: 1, name: 'lo', up: true, lowerUp: true }, br0],
    addresses: [{ index: 2, family: 10, value: parse6('fd00:1::1'), prefixlen: 64, tentative: false, dadfailed: false, noprefixroute: false }],
    routes: [], taps: new Map(), paths: new Map(), files: new Map(), dirEntries: new Map(), surplus: [], nonlocalBind: '1', osType: '[]',
    stored: { address: 'fd00:1::1', partition_list: [recorded] },
  } as unknown as Observed;
  const plan = makePlan(s, obs, 20000);
  t.is(plan.mode, 'route', 'the record says routed, the bridge does not matter');
  const resource = plan.steps.find((x) => x.kind === 'write-file' && x.path.endsWith('/slappart0/.slapos-resource')) as { content: string } | undefined;
  const written = JSON.parse(resource?.content ?? '{}') as typeof recorded;
  t.deepEqual(written.tap, recorded.tap);
  t.deepEqual(written.ipv6_range, recorded.ipv6_range);
  t.deepEqual(written.address_list, recorded.address_list);
  const adds = plan.steps.filter((x) => x.kind === 'addr-add' || x.kind === 'route-add').map((x) => ('address' in x ? x.address : (x as { dst: string }).dst));
  t.deepEqual(adds, ['fd00:1::b3c1:ffff:ffff:ffff', 'fd00:1::b3c1:0:0:1/128', 'fd00:1:0:0:b3c1::/80', '10.0.77.3', 'fd00:1::2', 'fd00:1:0:0:4d2f::/80'],
    'what is missing on this kernel is added at the recorded places, nothing derived again');
});

test('plan: partitions formatted before but with no record left adopt the unclaimed /32s of the pool on the interface, lowest first; a new node does not', (t) => {
  const s = settings('', 2);
  const v4 = (text: string) => text.split('.').reduce((acc, b) => acc * 256 + Number(b), 0);
  const obs = (dirs: boolean) => ({
    users: { passwd: parseDbFile('root:x:0:0::/root:/bin/sh\n'), group: parseDbFile('root:x:0:\n'), shadow: parseDbFile(''), gshadow: parseDbFile('') },
    idRanges: parseLoginDefs(''),
    links: [{ index: 1, name: 'lo', up: true, lowerUp: true }, br0],
    addresses: [
      { index: 2, family: 10, value: parse6('fd00:1::1'), prefixlen: 64, tentative: false, dadfailed: false, noprefixroute: false },
      { index: 2, family: 2, value: v4('10.0.9.9'), prefixlen: 32, tentative: false, dadfailed: false, noprefixroute: false },
      { index: 2, family: 2, value: v4('10.0.3.3'), prefixlen: 32, tentative: false, dadfailed: false, noprefixroute: false },
    ],
    routes: [], taps: new Map(), files: new Map(), dirEntries: new Map(), surplus: [], nonlocalBind: '1', osType: '[]',
    paths: new Map(dirs ? [['/srv/i/slappart0', { isDir: true, mode: 0o750, uid: 0, gid: 0 }], ['/srv/i/slappart1', { isDir: true, mode: 0o750, uid: 0, gid: 0 }]] : []),
  } as unknown as Observed);
  const rebuilt = makePlan(s, obs(true), 20000);
  const ipv4 = (plan: typeof rebuilt) => (plan.computer.partition_list as { address_list: { addr: string }[] }[]).map((p) => p.address_list[0]?.addr);
  t.deepEqual(ipv4(rebuilt), ['10.0.3.3', '10.0.9.9']);
  t.false(rebuilt.steps.some((x) => x.kind === 'addr-add' && x.address.startsWith('10.')), 'no IPv4 added');
  t.true(rebuilt.warnings.includes('slappart0: no record of its addresses; adopting 10.0.3.3, on br0 and claimed by no other partition'), rebuilt.warnings.join('\n'));
  t.deepEqual(ipv4(makePlan(s, obs(false), 20000)), ['10.0.0.1', '10.0.0.2'], 'a new node draws its own (deterministic) addresses');
});
