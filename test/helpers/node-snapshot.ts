// A normalised picture of a live node, in the shape of the recorded
// test/fixtures/reference-node/state.json ("slapos-node-format-state/1"), to
// compare a node with the one the reference formatted: users and groups by name
// (id range only), files under the node directory with mode, owner and content
// hash after putting the placeholders back, links by name (no MAC, no
// ifindex), addresses, routes and rules with their flags, selected sysctls.
// Link-local addresses become @LINKLOCAL@.
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './system.js';
import { unsubstitute, type ReferenceNode } from './reference-node.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type NodeState = Record<string, Json>;

const LINKLOCAL = '@LINKLOCAL@';
const isLinkLocal = (a: string) => /^fe[89ab][0-9a-f]:/i.test(a) && !a.includes('/');
const ll = (a: string) => (isLinkLocal(a) ? LINKLOCAL : a);
const ipj = <T>(netns: string, ...args: string[]): T => JSON.parse(run('ip', ['-n', netns, '-j', ...args]) || '[]') as T;
const sortKeys = (v: Json): Json => {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k] as Json)]));
  return v;
};
const byJson = (a: Json, b: Json) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0);

function loginDefs(): Record<string, number> {
  const text = readFileSync('/etc/login.defs', 'utf8');
  const get = (key: string, fallback: number) => Number(new RegExp(`^\\s*${key}\\s+(\\d+)`, 'm').exec(text)?.[1] ?? fallback);
  return { UID_MIN: get('UID_MIN', 1000), UID_MAX: get('UID_MAX', 60000), GID_MIN: get('GID_MIN', 1000), GID_MAX: get('GID_MAX', 60000) };
}

function idRange(id: number, min: number, max: number): string {
  if (id === 0) return 'root';
  if (id >= min && id <= max) return 'regular';
  if (id < min) return 'system';
  return 'other';
}

const dbLines = (file: string) => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => l.split(':'));

function usersAndGroups(names: (name: string) => boolean, node: Pick<ReferenceNode, 'placeholders'>): { users: Json[]; groups: Json[] } {
  const defs = loginDefs();
  const passwd = dbLines('/etc/passwd');
  const group = dbLines('/etc/group');
  const shadow = new Map(dbLines('/etc/shadow').map((f) => [f[0], f]));
  const groupName = new Map(group.map((f) => [f[2], f[0] as string]));
  const users: Json[] = passwd.filter((f) => names(f[0] as string)).map((f) => {
    const name = f[0] as string;
    const s = shadow.get(name) ?? [];
    const status = run('passwd', ['-S', name]).trim().split(/\s+/)[1] ?? '';
    return {
      gecos: f[4] ?? '',
      groups: group.filter((g) => (g[3] ?? '').split(',').includes(name)).map((g) => g[0] as string).sort(),
      home: unsubstitute(f[5] ?? '', node),
      locked: status === 'L',
      name,
      passwd_status: status,
      primary_group: groupName.get(f[3]) ?? String(f[3]),
      shadow: { expire: s[7] ?? '', inactive: s[6] ?? '', lastchg_set: (s[2] ?? '') !== '', max: s[4] ?? '', min: s[3] ?? '', password: s[1] ?? '', warn: s[5] ?? '' },
      shell: f[6] ?? '',
      uid_range: idRange(Number(f[2]), defs.UID_MIN as number, defs.UID_MAX as number),
    };
  });
  const groups: Json[] = group.filter((f) => names(f[0] as string)).map((f) => ({
    gid_range: idRange(Number(f[2]), defs.GID_MIN as number, defs.GID_MAX as number),
    members: (f[3] ?? '').split(',').filter((m) => m !== '').sort(),
    name: f[0] as string,
    password: f[1] ?? '',
  }));
  return { users, groups };
}

function files(node: Pick<ReferenceNode, 'dir' | 'placeholders'>): Json[] {
  const out: Json[] = [];
  const owner = new Map(dbLines('/etc/passwd').map((f) => [Number(f[2]), f[0] as string]));
  const group = new Map(dbLines('/etc/group').map((f) => [Number(f[2]), f[0] as string]));
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const file = path.join(dir, name);
      if (dir === node.dir && (name.startsWith('proxy.db') || name === 'shacache')) continue; // the master's database and network cache store, not node state
      const st = lstatSync(file);
      const entry: Record<string, Json> = {
        group: group.get(st.gid) ?? String(st.gid),
        mode: (st.mode & 0o7777).toString(8).padStart(4, '0'),
        owner: owner.get(st.uid) ?? String(st.uid),
        path: unsubstitute(file, node),
        type: st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink' : 'other',
      };
      if (st.isFile()) {
        const content = Buffer.from(unsubstitute(readFileSync(file, 'latin1'), node), 'latin1');
        entry.sha256 = createHash('sha256').update(content).digest('hex');
        entry.size = content.length;
      }
      out.push(entry);
      if (st.isDirectory()) walk(file);
    }
  };
  walk(node.dir);
  return out;
}

interface IpLink {
  ifname: string; link?: string; master?: string; flags: string[]; mtu: number; qdisc: string; operstate: string; group: string; txqlen?: number;
  link_type: string; inet6_addr_gen_mode?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, Json> };
}

function links(netns: string): Json[] {
  return ipj<IpLink[]>(netns, '-d', 'link', 'show').map((l) => {
    const kind = l.linkinfo?.info_kind ?? (l.link_type === 'loopback' ? 'loopback' : null);
    const entry: Record<string, Json> = {
      addr_gen_mode: l.inet6_addr_gen_mode ?? null,
      carrier: !l.flags.includes('NO-CARRIER'),
      flags: [...l.flags].sort(),
      group: l.group,
      kind,
      master: l.master ?? null,
      mtu: l.mtu,
      name: l.ifname,
      operstate: l.operstate,
      peer: kind === 'veth' ? l.link ?? null : null,
      qdisc: l.qdisc,
      txqlen: l.txqlen ?? null,
      up: l.flags.includes('UP'),
    };
    const d = l.linkinfo?.info_data ?? {};
    if (kind === 'bridge') {
      entry.bridge = { forward_delay: d.forward_delay ?? null, mcast_snooping: d.mcast_snooping ?? null, stp_state: d.stp_state ?? null, vlan_filtering: d.vlan_filtering ?? null };
    }
    if (kind === 'tun') {
      const sys = (key: string) => run('ip', ['netns', 'exec', netns, 'cat', `/sys/class/net/${l.ifname}/${key}`]).trim();
      const byId = (file: string, id: string) => (id === '-1' ? null : (dbLines(file).find((f) => f[2] === id)?.[0] ?? id));
      entry.tun = {
        group: d.group ?? null, multi_queue: d.multi_queue ?? false, persist: d.persist ?? false, pi: d.pi ?? false,
        sys_group: byId('/etc/group', sys('group')), sys_owner: byId('/etc/passwd', sys('owner')), sys_tun_flags: sys('tun_flags'),
        type: d.type ?? null, user: d.user ?? null, vnet_hdr: d.vnet_hdr ?? false,
      };
    }
    return entry;
  });
}

interface IpAddr { ifname: string; addr_info: Record<string, Json>[] }
const ADDRESS_FLAGS = ['noprefixroute', 'tentative', 'dadfailed', 'deprecated', 'nodad', 'optimistic', 'home', 'mngtmpaddr', 'secondary', 'stable-privacy'];
const lifetime = (v: Json | undefined) => (v === 4294967295 || v === undefined ? 'forever' : `${String(v)}sec`);

function addresses(netns: string): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const l of ipj<IpAddr[]>(netns, 'addr', 'show')) {
    const list = l.addr_info.map((a) => ({
      family: a.family as string,
      flags: ADDRESS_FLAGS.filter((f) => a[f] === true).sort(),
      local: ll(a.local as string),
      preferred_lft: lifetime(a.preferred_life_time),
      prefixlen: a.prefixlen as number,
      scope: a.scope as string,
      valid_lft: lifetime(a.valid_life_time),
    }));
    if (list.length > 0) out[l.ifname] = list.sort(byJson);
  }
  return out;
}

function routes(netns: string): Json[] {
  const out: Json[] = [];
  for (const [family, name] of [['-4', 'inet'], ['-6', 'inet6']] as const) {
    for (const r of ipj<Record<string, Json>[]>(netns, family, 'route', 'show', 'table', 'all')) {
      const entry: Record<string, Json> = {
        dev: (r.dev as string) ?? null,
        dst: ll(r.dst as string),
        family: name,
        flags: [...((r.flags as string[]) ?? [])].sort(),
        metric: (r.metric as number) ?? 0,
        protocol: (r.protocol as string) ?? 'boot',
        table: (r.table as string) ?? 'main',
        type: (r.type as string) ?? 'unicast',
      };
      if (r.gateway) entry.gateway = ll(r.gateway as string);
      if (name === 'inet6') entry.pref = (r.pref as string) ?? null;
      if (name === 'inet') {
        if (r.prefsrc) entry.prefsrc = r.prefsrc as string;
        entry.scope = (r.scope as string) ?? 'global';
      }
      out.push(entry);
    }
  }
  return out.sort(byJson);
}

const SYSCTL4 = ['arp_announce', 'arp_ignore', 'forwarding', 'proxy_arp', 'rp_filter'];
const SYSCTL6 = ['accept_dad', 'accept_ra', 'addr_gen_mode', 'autoconf', 'dad_transmits', 'disable_ipv6', 'forwarding', 'proxy_ndp'];

function sysctls(netns: string, ifnames: string[]): Record<string, Json> {
  const files: string[] = ['ipv4/ip_forward', 'ipv4/ip_nonlocal_bind', 'ipv6/ip_nonlocal_bind'];
  for (const ifname of ['all', 'default', ...ifnames]) {
    for (const k of SYSCTL4) files.push(`ipv4/conf/${ifname}/${k}`);
    for (const k of SYSCTL6) files.push(`ipv6/conf/${ifname}/${k}`);
  }
  // One process: grep prints "file:value" for each.
  const text = run('ip', ['netns', 'exec', netns, 'grep', '-H', '', ...files.map((f) => `/proc/sys/net/${f}`)]);
  const out: Record<string, Json> = {};
  for (const line of text.split('\n')) {
    const m = /^\/proc\/sys\/(.*?):(.*)$/.exec(line);
    if (m) out[(m[1] as string).replaceAll('/', '.')] = (m[2] as string).trim();
  }
  return out;
}

function rules(netns: string): Record<string, Json> {
  const text = (family: string) => run('ip', ['-n', netns, family, 'rule']).split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');
  return { inet: text('-4'), inet6: text('-6') };
}

/** Waits until no address is tentative on an interface that has carrier (DAD can finish there). */
async function settle(netns: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const carrier = new Set(ipj<IpLink[]>(netns, 'link', 'show').filter((l) => !l.flags.includes('NO-CARRIER')).map((l) => l.ifname));
    const pending = ipj<IpAddr[]>(netns, 'addr', 'show').some((l) => carrier.has(l.ifname) && l.addr_info.some((a) => a.tentative === true));
    if (!pending) return;
    await sleep(100);
  }
}

/**
 * The node's state. `names` selects the users and groups that belong to the
 * node (the fixture's: its users/passwd.txt and group.txt names).
 */
export async function snapshotNode(
  node: Pick<ReferenceNode, 'netns' | 'dir' | 'users' | 'groups' | 'placeholders'>,
  names: (name: string) => boolean = (n) => node.users.includes(n) || node.groups.includes(n),
  options: { files?: boolean } = {},
): Promise<NodeState> {
  await settle(node.netns);
  const linkList = links(node.netns);
  const { users, groups } = usersAndGroups(names, node);
  return sortKeys({
    addresses: addresses(node.netns),
    // A node running instances has logs and pid files changing under it: callers may leave files out.
    files: options.files === false ? [] : files(node),
    format: 'slapos-node-format-state/1',
    groups,
    links: linkList.sort(byJson),
    routes: routes(node.netns),
    rules: rules(node.netns),
    sysctl: sysctls(node.netns, linkList.map((l) => (l as { name: string }).name)),
    users,
  }) as NodeState;
}

/** Makes a recorded state comparable with snapshotNode's (same list orders). */
export function normaliseState(state: NodeState): NodeState {
  const copy = JSON.parse(JSON.stringify(state)) as Record<string, Json>;
  for (const key of ['links', 'routes', 'users', 'groups', 'files'] as const) {
    if (Array.isArray(copy[key])) copy[key] = (copy[key] as Json[]).map(sortKeys).sort(byJson);
  }
  const addrs = copy.addresses as Record<string, Json[]> | undefined;
  if (addrs) for (const k of Object.keys(addrs)) addrs[k] = (addrs[k] as Json[]).map(sortKeys).sort(byJson);
  return sortKeys(copy) as NodeState;
}

export interface StateDifference {
  /** e.g. "files[@DIR@/slapos.xml]", "addresses.br0[fd00::2]", "sysctl.net.ipv6.ip_nonlocal_bind". */
  where: string;
  expected: Json | undefined;
  actual: Json | undefined;
}

const entryKey = (section: string, e: Json): string => {
  const o = e as Record<string, Json>;
  switch (section) {
    case 'files': return String(o.path);
    case 'links': case 'users': case 'groups': return String(o.name);
    case 'routes': return `${String(o.family)} ${String(o.table)} ${String(o.type)} ${String(o.dst)} dev ${String(o.dev)}${o.gateway ? ` via ${String(o.gateway)}` : ''}`;
    default: return `${String(o.family)} ${String(o.local)}/${String(o.prefixlen)}`;
  }
};

/** Entry by entry differences between two states (both normalised). */
export function diffStates(expected: NodeState, actual: NodeState): StateDifference[] {
  const out: StateDifference[] = [];
  const compareLists = (where: string, section: string, a: Json[] = [], b: Json[] = []) => {
    const ma = new Map<string, Json[]>();
    for (const e of a) ma.set(entryKey(section, e), [...(ma.get(entryKey(section, e)) ?? []), e]);
    const mb = new Map<string, Json[]>();
    for (const e of b) mb.set(entryKey(section, e), [...(mb.get(entryKey(section, e)) ?? []), e]);
    for (const key of new Set([...ma.keys(), ...mb.keys()])) {
      const x = ma.get(key);
      const y = mb.get(key);
      if (JSON.stringify(x) !== JSON.stringify(y)) out.push({ where: `${where}[${key}]`, expected: x?.length === 1 ? x[0] : x, actual: y?.length === 1 ? y[0] : y });
    }
  };
  for (const section of ['files', 'links', 'users', 'groups', 'routes']) compareLists(section, section, expected[section] as Json[], actual[section] as Json[]);
  const ea = (expected.addresses ?? {}) as Record<string, Json[]>;
  const aa = (actual.addresses ?? {}) as Record<string, Json[]>;
  for (const dev of new Set([...Object.keys(ea), ...Object.keys(aa)])) compareLists(`addresses.${dev}`, 'addresses', ea[dev], aa[dev]);
  for (const section of ['sysctl', 'rules']) {
    const x = (expected[section] ?? {}) as Record<string, Json>;
    const y = (actual[section] ?? {}) as Record<string, Json>;
    for (const key of new Set([...Object.keys(x), ...Object.keys(y)])) {
      if (JSON.stringify(x[key]) !== JSON.stringify(y[key])) out.push({ where: `${section}.${key}`, expected: x[key], actual: y[key] });
    }
  }
  return out;
}
