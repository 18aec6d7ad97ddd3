// The managers' pure parts: request plans (hostile inputs included), nft
// scripts, settings, pools, cpuset writes per cgroup layout.
import test from 'ava';
import { parseConfig } from '../../src/config/load.js';
import { planCpusetWrites, parseCpuList, cpusetMountFromMountinfo } from '../../src/cgroup/cpuset.js';
import { baseScript, chainName, firewallScript, redirectScript, removeWhitelistScript, whitelistScript } from '../../src/firewall/ruleset.js';
import { assignPool, planCpuset, planDevperm, planFirewall, planPortredir, planWhitelist, routableFromIpList } from '../../src/managers/plans.js';
import { managerSettings } from '../../src/managers/settings.js';
import { formatManagerStatus } from '../../src/managers/index.js';
import { withPools } from '../../src/format/pools-hook.js';

const config = (text: string) => parseConfig(`[slapos]\ninstance_root = /srv/slapgrid\n${text}`, '/etc/slapos.cfg');

test('whitelist: IPv4 list accepted, anything else refused as a whole', (t) => {
  t.deepEqual(planWhitelist('["1.2.3.4", "10.0.0.1", "1.2.3.4"]'), { ok: true, value: ['1.2.3.4', '10.0.0.1'] });
  t.deepEqual(planWhitelist('[]'), { ok: true, value: [] });
  for (const bad of ['{"a": 1}', 'not json', '["1.2.3.4", "::1"]', '["1.2.3.0/24"]', '[16909060]', '["1.2.3.4; flush ruleset"]', '["01.2.3.4"]']) {
    const plan = planWhitelist(bad);
    t.false(plan.ok, bad);
  }
  t.false(planWhitelist(JSON.stringify(Array.from({ length: 300 }, (_, i) => `10.0.${i >> 8}.${i & 255}`))).ok);
});

const own = ['10.0.0.2', 'fd00::2'];
const redir = (text: string, extra: Partial<Parameters<typeof planPortredir>[0]> = {}) =>
  planPortredir({ text, own, takenByOthers: new Map(), listening: new Set(), held: new Set(), ...extra });

test('portredir: entries as the reference writes them', (t) => {
  t.deepEqual(redir('[{"srcPort": 8080, "destPort": 80, "destAddress": "10.0.0.2"}]'),
    { ok: true, value: [{ protocol: 'tcp', srcPort: 8080, destAddress: '10.0.0.2', destPort: 80 }] });
  // type case-insensitive, ports as strings (int()), default destination: the first IPv6.
  t.deepEqual(redir('[{"type": "UDP", "srcPort": "5353", "destPort": "53"}]'),
    { ok: true, value: [{ protocol: 'udp', srcPort: 5353, destAddress: 'fd00::2', destPort: 53 }] });
  t.deepEqual(redir('[{"srcPort": 8443, "srcAddress": "192.0.2.1", "destPort": 443, "destAddress": "10.0.0.2"}]'),
    { ok: true, value: [{ protocol: 'tcp', srcPort: 8443, destAddress: '10.0.0.2', destPort: 443, srcAddress: '192.0.2.1' }] });
});

test('portredir: hostile or mistaken requests are refused, with a reason', (t) => {
  const cases: [string, RegExp, Partial<Parameters<typeof planPortredir>[0]>?][] = [
    ['[{"srcPort": 80, "destPort": 80, "destAddress": "10.0.0.2"}]', /privileged/],
    ['[{"srcPort": 8080, "destPort": 22, "destAddress": "127.0.0.1"}]', /not one of the partition's addresses/],
    ['[{"srcPort": 8080, "destPort": 80, "destAddress": "10.0.0.3"}]', /not one of the partition's addresses/],
    ['[{"srcPort": 70000, "destPort": 80, "destAddress": "10.0.0.2"}]', /bad srcPort/],
    ['[{"srcPort": 8080, "destPort": "80; reboot", "destAddress": "10.0.0.2"}]', /bad destPort/],
    ['[{"srcPort": 8080, "destPort": 80, "type": "sctp", "destAddress": "10.0.0.2"}]', /bad type/],
    ['[{"srcPort": 8080, "destPort": 80, "srcAddress": "fd00::1", "destAddress": "10.0.0.2"}]', /different IP families/],
    ['["8080:80"]', /not an object/],
    ['{"srcPort": 8080}', /not a JSON list/],
    ['[{"srcPort": 8080, "destPort": 80, "destAddress": "10.0.0.2"}]', /another partition/, { takenByOthers: new Map([['tcp/8080', 'slappart1']]) }],
    ['[{"srcPort": 8080, "destPort": 80, "destAddress": "10.0.0.2"}]', /in use on the host/, { listening: new Set(['tcp/8080']) }],
    ['[{"srcPort": 8080, "destPort": 80, "destAddress": "10.0.0.2"}, {"srcPort": 8080, "destPort": 81, "destAddress": "10.0.0.2"}]', /listed twice/],
  ];
  for (const [text, reason, extra] of cases) {
    const plan = redir(text, extra);
    t.false(plan.ok, text);
    if (!plan.ok) t.regex(plan.reason, reason, text);
  }
  // A port the partition already holds (its redirect's own listener) is not "in use".
  t.true(redir('[{"srcPort": 8080, "destPort": 80, "destAddress": "10.0.0.2"}]', { listening: new Set(['tcp/8080']), held: new Set(['tcp/8080']) }).ok);
});

test('devperm: only block devices of the allow-list, never another partition\'s', (t) => {
  const devices: Record<string, string> = { '/dev/loop3': '/dev/loop3', '/dev/disk/by-id/x': '/dev/loop3', '/dev/sda': '/dev/sda' };
  const input = (text: string, taken = new Map<string, string>()) => ({ text, allowed: ['/dev/loop3'], resolveBlock: (p: string) => devices[p], takenByOthers: taken });
  t.deepEqual(planDevperm(input('[{"disk": "/dev/loop3"}, {"disk": "/dev/disk/by-id/x"}]')), { ok: true, value: ['/dev/loop3'] });
  const refused: [string, RegExp][] = [
    ['[{"disk": "/dev/sda"}]', /not in allowed disk list/],
    ['[{"disk": "/srv/slapgrid/slappart0/disk"}]', /not a device path under \/dev/],
    ['[{"disk": "/dev/../etc/shadow"}]', /not a device path/],
    ['[{"disk": "/dev/null0"}]', /not a block device/],
    ['["/dev/loop3"]', /is not \{"disk"/],
    ['[{"disk": null}]', /is not \{"disk"/],
  ];
  for (const [text, reason] of refused) {
    const plan = planDevperm(input(text));
    t.false(plan.ok, text);
    if (!plan.ok) t.regex(plan.reason, reason);
  }
  const taken = planDevperm(input('[{"disk": "/dev/loop3"}]', new Map([['/dev/loop3', 'slappart1']])));
  t.false(taken.ok);
});

test('cpuset: power users only, own pids only, one free CPU per pid, the rest waits', (t) => {
  const base = {
    user: 'slapuser0', uid: 1000, powerUsers: new Set(['slapuser0']), pool: [1, 2, 3],
    ownerOf: (pid: number) => (pid === 666 ? 0 : pid < 100 ? 1000 : undefined), takenByOthers: new Map([[2, 'slappart1']]), held: new Map<number, number>(),
  };
  const plan = planCpuset({ ...base, text: '11\n12 13\n' });
  t.true(plan.ok);
  if (plan.ok) {
    t.deepEqual([...plan.value.pins], [[11, 1], [12, 3]]);
    t.deepEqual(plan.value.waiting, [13]);
  }
  const kept = planCpuset({ ...base, text: '12 11', held: new Map([[11, 3]]) });
  t.true(kept.ok && kept.value.pins.get(11) === 3 && kept.value.pins.get(12) === 1);
  for (const [text, reason] of [['666', /not the partition's own/], ['99999', /no process/], ['12abc', /not a pid/], ['-1', /not a pid/]] as const) {
    const r = planCpuset({ ...base, text });
    t.false(r.ok);
    if (!r.ok) t.regex(r.reason, reason);
  }
  const notPower = planCpuset({ ...base, text: '11', powerUsers: new Set() });
  t.false(notPower.ok);
  if (!notPower.ok) t.regex(notPower.reason, /not allowed to modify cpuset/);
});

test('firewall: accept and reject modes from the filter dict, strict sources', (t) => {
  t.deepEqual(planFirewall({ addresses: ['192.0.2.10'], filter: { fw_authorized_sources: '198.51.100.1 203.0.113.0/24' }, authorizedSources: ['10.1.0.0/16'] }),
    { ok: true, value: { mode: 'accept', sources: ['198.51.100.1', '203.0.113.0/24', '10.1.0.0/16'] } });
  // Without a filter dict the configuration's sources are not used (reference).
  t.deepEqual(planFirewall({ addresses: ['192.0.2.10'], filter: null, authorizedSources: ['10.1.0.0/16'] }), { ok: true, value: { mode: 'accept', sources: [] } });
  t.deepEqual(planFirewall({ addresses: ['192.0.2.10'], filter: { fw_restricted_access: 'off', fw_rejected_sources: '198.51.100.7' }, authorizedSources: [] }),
    { ok: true, value: { mode: 'reject', sources: ['198.51.100.7'] } });
  t.false(planFirewall({ addresses: ['192.0.2.10'], filter: { fw_authorized_sources: '1.2.3.4/24;reboot' }, authorizedSources: [] }).ok);
  t.false(planFirewall({ addresses: ['192.0.2.10'], filter: { fw_authorized_sources: '1.2.3.4/24' }, authorizedSources: [] }).ok, 'host bits set');
  t.deepEqual(routableFromIpList([['route_slaptap0', '192.0.2.10'], ['slappart0', '10.0.0.2'], ['route_x', 'fd00::1']]), ['192.0.2.10']);
});

test('nft scripts: one chain per partition, dispatch by verdict maps, idempotent removal', (t) => {
  t.is(chainName('wl', 'slappart0'), 'wl_slappart0');
  t.regex(chainName('wl', 'weird-name'), /^wl_h[0-9a-f]{16}$/);
  t.regex(baseScript(), /add rule inet slapos output meta skuid vmap @wl_uid/);
  const wl = whitelistScript('slappart0', 1001, ['1.2.3.4']);
  t.regex(wl, /flush chain inet slapos wl_slappart0\nadd rule inet slapos wl_slappart0 ip daddr \{ 1\.2\.3\.4 \} accept/);
  t.regex(wl, /add element inet slapos wl_uid \{ 1001 : jump wl_slappart0 \}/);
  t.regex(removeWhitelistScript('slappart0', 1001), /add element .*\ndelete element inet slapos wl_uid \{ 1001 \}\nflush chain .*\ndelete chain/);
  const pr = redirectScript('slappart0', [{ protocol: 'tcp', srcPort: 8080, destAddress: 'fd00::2', destPort: 80 }], [{ protocol: 'udp', srcPort: 5353 }]);
  t.regex(pr, /meta nfproto ipv6 fib daddr type local tcp dport 8080 dnat ip6 to \[fd00::2\]:80/);
  t.regex(pr, /delete element inet slapos redir \{ udp \. 5353 \}/);
  const fw = firewallScript('slappart0', { addresses: ['192.0.2.10'], mode: 'accept', sources: [] }, ['192.0.2.11']);
  t.regex(fw, /delete element inet slapos fw_addr \{ 192\.0\.2\.11 \}/);
  t.notRegex(fw, /saddr \{ {2}\}/);
});

test('settings: manager_list, [manager:devperm], [firewall], pools; bad values name the key', (t) => {
  const s = managerSettings(config('manager_list = devperm, portredir whitelistfirewall\npower_user_list = slapuser0\n[manager:devperm]\nallowed-disk-for-vm =\n  /dev/loop3\n  /dev/vdb\n[firewall]\nauthorized_sources = 10.0.0.0/8\n[slapformat]\npartition_routable_ipv4_list =\n  192.0.2.10\n'));
  t.deepEqual(s.enabled, ['devperm', 'portredir', 'whitelistfirewall']);
  t.deepEqual(s.allowedDisks, ['/dev/loop3', '/dev/vdb']);
  t.deepEqual(s.firewall, { authorizedSources: ['10.0.0.0/8'] });
  t.deepEqual(s.routableIpv4, ['192.0.2.10']);
  t.true(s.powerUsers.has('slapuser0'));
  // [manager-devperm] and [manager/devperm] name the same manager (the name is the section minus 8 characters).
  t.throws(() => managerSettings(config('manager_list = sockets')), { message: /unknown manager "sockets"/ });
  t.throws(() => managerSettings(config('manager_list = 1bad')), { message: /not allowed/ });
  t.throws(() => managerSettings(config('[firewall]\nauthorized_sources = everyone')), { message: /authorized_sources/ });
  t.throws(() => managerSettings(config('[slapformat]\npartition_routable_ipv4_list = 300.1.1.1')), { message: /partition_routable_ipv4_list/ });
  t.is(managerSettings(config('')).firewall, undefined);
  t.deepEqual(managerSettings(config('[firewall]')).firewall, { authorizedSources: [] }, 'an empty [firewall] enables it');
});

test('pools: partitions keep what they hold; free resources go in partition order', (t) => {
  t.deepEqual(assignPool(['p0', 'p1', 'p2'], ['a', 'b'], {}), { p0: 'a', p1: 'b' });
  t.deepEqual(assignPool(['p0', 'p1', 'p2'], ['a', 'b'], { p2: 'a' }), { p2: 'a', p0: 'b' });
  t.deepEqual(assignPool(['p0', 'p1'], ['b'], { p0: 'a' }), { p0: 'b' }, 'a resource gone from the pool is taken back');
});

test('cpuset writes: a group per CPU on v1, the partition group on v2', (t) => {
  t.deepEqual(parseCpuList('0-2,5\n'), [0, 1, 2, 5]);
  t.is(cpusetMountFromMountinfo('34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n'), '/sys/fs/cgroup/cpuset');
  const v1 = planCpusetWrites({ kind: 'hybrid', mount: '/cs', mems: '0', allCpus: '0-3' }, 'slapos', 'slappart0', [2], 77, 2);
  t.deepEqual(v1.map((w) => `${w.file}=${w.value}`), [
    '/cs/slapos/cpuset.cpus=0-3', '/cs/slapos/cpuset.mems=0', '/cs/slapos/cpu2/cpuset.cpus=2', '/cs/slapos/cpu2/cpuset.mems=0', '/cs/slapos/cpu2/cgroup.procs=77',
  ]);
  const v2 = planCpusetWrites({ kind: 'unified', root: '/cg' }, 'slapos', 'slappart0', [2, 3], 77, 2);
  t.deepEqual(v2.map((w) => `${w.file}=${w.value}`), ['/cg/cgroup.subtree_control=+cpuset', '/cg/slapos/cgroup.subtree_control=+cpuset', '/cg/slapos/slappart0/cpuset.cpus=2,3']);
});

test('status lines', (t) => {
  const text = formatManagerStatus(['portredir'], true, [{
    partition: 'slappart0', refused: [{ manager: 'portredir', reason: 'srcPort 80 is privileged' }], updated: '',
    portredir: { redirects: [{ protocol: 'tcp', srcPort: 8080, destAddress: '10.0.0.2', destPort: 80 }] },
  }]);
  t.is(text, 'managers: portredir; [firewall] on nftables\n  slappart0: portredir tcp/8080->10.0.0.2:80; refused: portredir: srcPort 80 is privileged');
});

test('format report: the pool address joins the partition\'s address_list, the device its external_storage_list', (t) => {
  const computer = { reference: 'COMP-1', partition_list: [
    { reference: 'slappart0', address_list: [{ addr: '10.0.0.2', netmask: '255.255.255.255' }], external_storage_list: [] },
    { reference: 'slappart1', address_list: [], external_storage_list: [] },
  ] };
  t.deepEqual(withPools(computer, { ipv4: { slappart0: '192.0.2.10' }, blockDevice: { slappart1: '/dev/vdb' } }), { reference: 'COMP-1', partition_list: [
    { reference: 'slappart0', address_list: [{ addr: '10.0.0.2', netmask: '255.255.255.255' }, { addr: '192.0.2.10', netmask: '255.255.255.255' }], external_storage_list: [] },
    { reference: 'slappart1', address_list: [], external_storage_list: ['/dev/vdb'] },
  ] });
});
