// The network part of the plan (pure): which addresses, routes, taps and
// tuns each partition gets (§5.3-5.6), and the steps that make the kernel's
// state match, computed from what observe.ts read.
import path from 'node:path';
import { planTap } from '../network/tap.js';
import { AF_INET, AF_INET6, TABLE_LOCAL, TABLE_MAIN, type AddressState, type LinkState } from '../network/netlink.js';
import {
  allocateIpv4, chooseBase6, contains6, format4, format6, isGlobal6, mask6, parse4, parse6, partitionAddress6,
  subRange6, tapIpv6, type Base6, type Range6, type TapIpv6,
} from './addressing.js';
import type { Dict } from './computer-xml.js';
import {
  decideTapMode, ModeConflictError, partitionRecord, resourceEntry, storedRange, storedTapIpv4, storedTapIpv6, storedTun, type StoredTapIpv4,
  type ModeDecision,
} from './adopt.js';
import { NONLOCAL_BIND, type Observed } from './observe.js';
import type { FormatSettings } from './settings.js';
import type { Step } from './steps.js';

/** A refusal or impossibility found while planning: exit 1, nothing changed. */
export class FormatError extends Error {
  override name = 'FormatError';
}

/** Another tool changed the user database between observing and applying: plan again. */
export class UserDbChangedError extends FormatError {
  override name = 'UserDbChangedError';
}

export interface TunNet {
  name: string;
  ipv4: number;
  ipv4Prefixlen: number;
  ipv6?: { address: bigint; range: Range6 };
}

export interface PartitionNet {
  ipv4: number;
  ipv6: bigint;
  range?: Range6;
  /** Tap IPv4 fields as recorded (tap_gateway_interface on the reference), kept on adoption. */
  tapIpv4?: StoredTapIpv4;
  /** Tap addressing (route mode with tap_ipv6 only). */
  tap?: TapIpv6 & { range: Range6; address: bigint; gateway: bigint };
  tun?: TunNet;
}

export interface NetworkModel {
  mode: 'bridge' | 'route';
  /** What planning found worth reporting (a contradicting config…). */
  notes?: string[];
  base: Base6;
  interfaceName: string;
  ipv6Interface: string;
  partitions: PartitionNet[];
}

const storedByReference = new WeakMap<object, Map<unknown, Dict>>();

/** The stored partition of that reference (the first one, as a search would find it), through an index built once per stored list. */
export function storedPartition(observed: Observed, reference: string): Dict | undefined {
  const list = observed.stored?.partition_list;
  if (!Array.isArray(list)) return undefined;
  let index = storedByReference.get(list);
  if (!index) {
    index = new Map();
    for (const p of list) {
      if (p !== null && typeof p === 'object' && !Array.isArray(p) && !index.has(p.reference)) index.set(p.reference, p);
    }
    storedByReference.set(list, index);
  }
  return index.get(reference);
}

function storedAddresses(entry: Dict | undefined): { v4?: number; v6?: bigint } {
  const out: { v4?: number; v6?: bigint } = {};
  const list = entry?.address_list;
  if (!Array.isArray(list)) return out;
  for (const item of list) {
    const addr = item !== null && typeof item === 'object' && !Array.isArray(item) ? String(item.addr ?? '') : '';
    try {
      if (addr.includes(':')) out.v6 = parse6(addr);
      else if (addr !== '') out.v4 = parse4(addr);
    } catch {
      // an unreadable stored address is derived again
    }
  }
  return out;
}

/**
 * Lookups by value over what observe read, built once per observation: the
 * plan asks for a few links, addresses and routes per partition, and linear
 * scans made planning quadratic in the number of partitions.
 */
interface ObservedIndex {
  links: Map<string, LinkState>;
  addresses: Map<string, AddressState>;
  routes: Set<string>;
}

const indexes = new WeakMap<Observed, ObservedIndex>();

const addressKey = (index: number, family: number, value: number | bigint, prefixlen: number) => `${index}|${family}|${value}|${prefixlen}`;
const routeKey = (family: number, dst: number | bigint, dstLen: number, oif: number | undefined, table: number, what: string) =>
  `${family}|${dst}|${dstLen}|${oif}|${table}|${what}`;

function indexOf(observed: Observed): ObservedIndex {
  let index = indexes.get(observed);
  if (!index) {
    const links = new Map<string, LinkState>();
    for (const l of observed.links) if (!links.has(l.name)) links.set(l.name, l);
    const addresses = new Map<string, AddressState>();
    for (const a of observed.addresses) {
      const key = addressKey(a.index, a.family, a.value, a.prefixlen);
      if (!addresses.has(key)) addresses.set(key, a);
    }
    const routes = new Set<string>();
    for (const r of observed.routes) {
      if (r.type === 'LOCAL') routes.add(routeKey(r.family, r.dst, r.dstLen, r.oif, r.table, 'local'));
      routes.add(routeKey(r.family, r.dst, r.dstLen, r.oif, r.table, `via ${r.gateway ?? ''}`));
    }
    index = { links, addresses, routes };
    indexes.set(observed, index);
  }
  return index;
}

const anyLen = new WeakMap<Observed, Set<string>>();

/** The address is on the device, whatever its prefix length (and not dadfailed). */
function hasAddressAnyLen(observed: Observed, index: number, family: number, value: number | bigint): boolean {
  let set = anyLen.get(observed);
  if (!set) {
    set = new Set(observed.addresses.filter((a) => !a.dadfailed).map((a) => `${a.index}|${a.family}|${a.value}`));
    anyLen.set(observed, set);
  }
  return set.has(`${index}|${family}|${value}`);
}

function link(observed: Observed, name: string): LinkState | undefined {
  return indexOf(observed).links.get(name);
}

function hasAddress(observed: Observed, index: number | undefined, family: number, value: number | bigint, prefixlen: number): AddressState | undefined {
  if (index === undefined) return undefined;
  return indexOf(observed).addresses.get(addressKey(index, family, value, prefixlen));
}

/** The reference's tun IPv4 plan: 172.16.0.0/12 cut into 2^ceil(log2(amount)) subnets (§5.4). */
function tunIpv4(amount: number, index: number): { address: number; prefixlen: number } {
  const prefixlen = 12 + Math.ceil(Math.log2(Math.max(1, amount)));
  return { address: parse4('172.16.0.0') + index * 2 ** (32 - prefixlen) + 1, prefixlen };
}

/**
 * Why bridge mode cannot go on, and what to do: a node whose taps are already
 * bridged keeps bridge mode whatever tap_mode says (advising tap_mode = route
 * to a file that says so would be no help), a new node follows tap_mode.
 */
export function bridgeRefusal(settings: FormatSettings, decision: ModeDecision, interfaceName: string, kind: string | undefined): string {
  const it = `interface_name ${interfaceName} is ${kind ? `a ${kind}` : 'a plain device'}, not a bridge`;
  if (decision.source === 'existing') {
    const taps = decision.evidence ?? [];
    const named = `${taps.slice(0, 3).join(', ')}${taps.length > 3 ? ', …' : ''}`;
    return `this node's taps are bridged (${named} ${taps.length === 1 ? 'has' : 'have'} a master device), so format keeps bridge mode` +
      `${settings.tapMode === 'route' ? ' although tap_mode = route' : ''}, but ${it}: ` +
      `set interface_name to the bridge the taps are on, or release the taps from it (ip link set <tap> nomaster) to let format route them`;
  }
  return `tap_mode = bridge needs a bridge, and ${it}: set interface_name to a bridge, or tap_mode = route`;
}

export function resolveNetwork(settings: FormatSettings, observed: Observed): NetworkModel {
  const interfaceName = settings.interfaceName as string;
  const ipv6Interface = settings.ipv6Interface ?? interfaceName;
  const main = link(observed, interfaceName);
  if (!main) throw new FormatError(`interface ${interfaceName} ([slapformat] interface_name) does not exist; create it or fix the key`);
  const v6link = link(observed, ipv6Interface);
  if (!v6link) throw new FormatError(`interface ${ipv6Interface} ([slapformat] ipv6_interface) does not exist; create it or fix the key`);
  const n = settings.partitionAmount;
  const refs = Array.from({ length: n }, (_, i) => `${settings.partitionBaseName}${i}`);
  // The record of each partition: the state file, else (lost, or older than
  // the kernel) the partition's .slapos-resource when the kernel confirms it.
  const live = (entry: Dict) => {
    const a = storedAddresses(entry);
    if (a.v4 === undefined || a.v6 === undefined) return false;
    if (!hasAddressAnyLen(observed, main.index, AF_INET, a.v4) || !hasAddressAnyLen(observed, v6link.index, AF_INET6, a.v6)) return false;
    // A routed tap's recorded address must be on that tap too, when the tap exists.
    const tapAddress = storedTapIpv6(entry)?.address;
    const tapLink = tapAddress === undefined ? undefined : link(observed, String((entry.tap as Dict | undefined)?.name ?? ''));
    return !tapLink || hasAddressAnyLen(observed, tapLink.index, AF_INET6, tapAddress as bigint);
  };
  const only = observed.storedFromDefinition === true;
  const records = refs.map((ref, i) =>
    partitionRecord(ref, storedPartition(observed, ref), only ? undefined : resourceEntry(observed.files.get(resourcePath(settings, i)), ref), live,
      only ? undefined : observed.masterRecords?.get(ref)));
  const entries = records.map((r) => r.entry);
  let decision;
  try {
    decision = decideTapMode(settings, observed, main, entries);
  } catch (error) {
    if (error instanceof ModeConflictError) throw new FormatError(error.message);
    throw error;
  }
  const mode = decision.mode;
  const notes: string[] = [...records.flatMap((r) => (r.note ? [r.note] : [])), ...(decision.contradiction ? [decision.contradiction] : [])];
  if (settings.createTap && mode === 'bridge' && main.kind !== 'bridge') {
    throw new FormatError(bridgeRefusal(settings, decision, interfaceName, main.kind));
  }
  const globals = observed.addresses
    .filter((a) => a.index === v6link.index && a.family === AF_INET6 && isGlobal6(a.value as bigint) && !a.dadfailed)
    .map((a) => ({ address: a.value as bigint, prefixlen: a.prefixlen }));
  const storedBase = typeof observed.stored?.address === 'string' ? safe6(observed.stored.address) : undefined;
  const stored = entries.map((entry) => storedAddresses(entry));
  // Our own partition addresses sit on the same interface and prefix: never take
  // one of them as the computer address (the stored one wins, then the shortest
  // prefix, then the lowest address, as the reference).
  const ours = new Set(stored.map((s) => s.v6));
  const partitionLike = (c: Base6) => {
    const host = c.address & ~mask6(c.prefixlen) & ((1n << 128n) - 1n);
    return ours.has(c.address) || (host >= 2n && host < BigInt(n) + 2n);
  };
  const preferred = globals.filter((c) => !partitionLike(c));
  const exact = storedBase === undefined ? undefined : globals.find((c) => c.address === storedBase);
  const base = exact ?? chooseBase6(preferred.length > 0 ? preferred : globals, storedBase);
  if (!base) {
    throw new FormatError(`interface ${ipv6Interface} has no global IPv6 address to derive partition addresses from; add one (e.g. a /64) and re-run`);
  }
  if (base.prefixlen >= 127) throw new FormatError(`the IPv6 prefix /${base.prefixlen} of ${ipv6Interface} is too long for partition addresses`);
  if (settings.ipv4LocalNetwork === undefined) throw new FormatError('[slapformat] ipv4_local_network is not set');

  // IPv4s the host uses for anything but our /32s on interface_name are off limits.
  const foreign = new Set<number>(
    observed.addresses.filter((a) => a.family === AF_INET && !(a.index === main.index && a.prefixlen === 32)).map((a) => a.value as number),
  );
  // A partition formatted before (its directory exists) with no record at all
  // adopts a /32 of the pool that is on interface_name and that no record
  // claims (the kernel wins: nothing leaks, nothing is re-addressed), lowest first.
  const pool = settings.ipv4LocalNetwork;
  const claimed = new Set(stored.map((s) => s.v4));
  const orphans = observed.addresses
    .filter((a) => a.index === main.index && a.family === AF_INET && a.prefixlen === 32)
    .map((a) => a.value as number)
    .filter((v) => v >= pool.network && v < pool.network + pool.size && !claimed.has(v))
    .sort((a, b) => a - b);
  const wanted4 = stored.map((s, i) => {
    if (s.v4 !== undefined || entries[i] !== undefined || orphans.length === 0) return s.v4;
    if (!observed.paths.get(path.join(settings.instanceRoot, refs[i] as string))) return s.v4;
    const adopted = orphans.shift() as number;
    notes.push(`${refs[i]}: no record of its addresses; adopting ${format4(adopted)}, on ${interfaceName} and claimed by no other partition`);
    return adopted;
  });
  const ipv4 = allocateIpv4(pool, n, wanted4, foreign);
  const other6 = new Set(observed.addresses.filter((a) => a.family === AF_INET6 && a.index !== v6link.index).map((a) => a.value as bigint));
  const baseNet = { network: base.address & mask6(base.prefixlen), prefixlen: base.prefixlen };
  const partitions: PartitionNet[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const s6 = stored[i]?.v6;
      const ipv6 = s6 !== undefined && contains6(baseNet, s6) && s6 !== base.address ? s6 : partitionAddress6(base, i);
      if (ipv6 === base.address || other6.has(ipv6)) {
        throw new FormatError(`partition ${refs[i]}: its address ${format6(ipv6)} is already used by this host (computer address or another interface); free it`);
      }
      const p: PartitionNet = { ipv4: ipv4[i] as number, ipv6 };
      // What the state file recorded as allocated stays as recorded (as the
      // reference does): ranges, tap and tun addressing are derived only once.
      if (settings.partitionHasIpv6Range) p.range = storedRange(entries[i]) ?? subRange6(base, settings.prefixShift, 1, i);
      if (settings.createTap && settings.tapIpv6 && mode === 'route') p.tap = storedTapIpv6(entries[i]) ?? tapIpv6(base, settings.prefixShift, i);
      const tap4 = settings.createTap ? storedTapIpv4(entries[i]) : undefined;
      if (tap4) p.tapIpv4 = tap4;
      if (settings.createTun) {
        const kept = storedTun(entries[i]);
        const v4 = kept ? { address: kept.ipv4, prefixlen: kept.ipv4Prefixlen } : tunIpv4(n, i);
        const tun: TunNet = { name: `${settings.tunBaseName}${i}`, ipv4: v4.address, ipv4Prefixlen: v4.prefixlen };
        if (kept?.ipv6) tun.ipv6 = kept.ipv6;
        else if (settings.tunIpv6) {
          const range = subRange6(base, settings.prefixShift, 3, i);
          tun.ipv6 = { address: range.network + 1n, range };
        }
        p.tun = tun;
      }
      partitions.push(p);
    }
  } catch (error) {
    if (error instanceof FormatError) throw error;
    throw new FormatError(`${(error as Error).message} (interface ${ipv6Interface})`);
  }
  return { mode, notes, base, interfaceName, ipv6Interface, partitions };
}

function safe6(text: string): bigint | undefined {
  try {
    return parse6(text);
  } catch {
    return undefined;
  }
}

function routeExists(observed: Observed, family: number, dst: number | bigint, dstLen: number, oif: number | undefined, options: { gateway?: bigint; local?: boolean }): boolean {
  if (oif === undefined) return false;
  const key = options.local
    ? routeKey(family, dst, dstLen, oif, TABLE_LOCAL, 'local')
    : routeKey(family, dst, dstLen, oif, TABLE_MAIN, `via ${options.gateway ?? ''}`);
  return indexOf(observed).routes.has(key);
}

export interface Owner {
  uid: number;
  gid: number;
}

/** Steps that give partition i its devices, addresses and routes. */
export function partitionNetworkSteps(settings: FormatSettings, observed: Observed, net: NetworkModel, i: number, owner: Owner): Step[] {
  const steps: Step[] = [];
  const p = net.partitions[i] as PartitionNet;
  const ref = `${settings.partitionBaseName}${i}`;
  const main = link(observed, net.interfaceName) as LinkState;
  const v6 = link(observed, net.ipv6Interface) as LinkState;
  const lo = link(observed, 'lo');

  const device = (name: string, type: 'tap' | 'tun') => {
    const current0 = observed.taps.get(name) ?? null;
    // A tap made by the reference (ip tuntap … user U) has no group: adopted as is.
    const adopted = current0 && current0.type === type && current0.persist && current0.owner === owner.uid && current0.group === -1;
    const action = adopted ? 'none' : planTap({ name, type, uid: owner.uid, gid: owner.gid }, current0);
    if (action !== 'none') steps.push({ kind: 'tap', name, type, uid: owner.uid, gid: owner.gid, action });
    const current = link(observed, name);
    if (type === 'tap' && net.mode === 'bridge' && current?.master !== main.index) steps.push({ kind: 'link-master', name, master: main.name });
    if (!current?.up) steps.push({ kind: 'link-up', name });
    return current?.index;
  };

  if (settings.createTap) {
    const tapName = `${settings.tapBaseName}${i}`;
    const index = device(tapName, 'tap');
    if (p.tap) {
      const t = p.tap;
      if (!hasAddress(observed, index, AF_INET6, t.address, t.range.prefixlen)) {
        steps.push({ kind: 'addr-add', dev: tapName, address: format6(t.address), prefixlen: t.range.prefixlen, noprefixroute: true });
      }
      if (!routeExists(observed, AF_INET6, t.gateway, 128, index, {})) steps.push({ kind: 'route-add', dst: `${format6(t.gateway)}/128`, dev: tapName });
      if (!routeExists(observed, AF_INET6, t.range.network, t.range.prefixlen, index, { gateway: t.gateway })) {
        steps.push({ kind: 'route-add', dst: `${format6(t.range.network)}/${t.range.prefixlen}`, dev: tapName, gateway: format6(t.gateway) });
      }
    }
  }
  if (p.tun) {
    const tun = p.tun;
    const index = device(tun.name, 'tun');
    if (!hasAddress(observed, index, AF_INET, tun.ipv4, tun.ipv4Prefixlen)) {
      steps.push({ kind: 'addr-add', dev: tun.name, address: format4(tun.ipv4), prefixlen: tun.ipv4Prefixlen });
    }
    if (tun.ipv6 && !hasAddress(observed, index, AF_INET6, tun.ipv6.address, tun.ipv6.range.prefixlen)) {
      steps.push({ kind: 'addr-add', dev: tun.name, address: format6(tun.ipv6.address), prefixlen: tun.ipv6.range.prefixlen });
    }
  }
  if (!hasAddress(observed, main.index, AF_INET, p.ipv4, 32)) {
    steps.push({ kind: 'addr-add', dev: main.name, address: format4(p.ipv4), prefixlen: 32, partition: ref });
  }
  const current6 = hasAddress(observed, v6.index, AF_INET6, p.ipv6, net.base.prefixlen);
  if (current6?.dadfailed) steps.push({ kind: 'addr-del', dev: v6.name, address: format6(p.ipv6), prefixlen: net.base.prefixlen });
  if (!current6 || current6.dadfailed) {
    steps.push({ kind: 'addr-add', dev: v6.name, address: format6(p.ipv6), prefixlen: net.base.prefixlen, partition: ref });
  }
  if (p.range && !routeExists(observed, AF_INET6, p.range.network, p.range.prefixlen, lo?.index, { local: true })) {
    steps.push({ kind: 'route-add', dst: `${format6(p.range.network)}/${p.range.prefixlen}`, dev: 'lo', local: true });
  }
  return steps;
}

/** Computer-wide network steps, run before the partitions'. */
export function computerNetworkSteps(settings: FormatSettings, observed: Observed): Step[] {
  const steps: Step[] = [];
  if (settings.partitionHasIpv6Range) {
    // Partitions bind addresses of their range that are only routed locally.
    if (observed.nonlocalBind !== undefined && observed.nonlocalBind !== '1') steps.push({ kind: 'sysctl', file: NONLOCAL_BIND, value: '1' });
    if (!link(observed, 'lo')?.up) steps.push({ kind: 'link-up', name: 'lo' });
  }
  return steps;
}

/** Steps that remove what surplus partition i had on the network. */
export function surplusNetworkSteps(settings: FormatSettings, observed: Observed, net: NetworkModel | undefined, i: number): Step[] {
  const steps: Step[] = [];
  for (const [name, type] of [[`${settings.tapBaseName}${i}`, 'tap'], [`${settings.tunBaseName}${i}`, 'tun']] as const) {
    const info = observed.taps.get(name);
    if (info) steps.push({ kind: 'tap-delete', name, type: info.type });
  }
  if (!net) return steps;
  const main = link(observed, net.interfaceName) as LinkState;
  const v6 = link(observed, net.ipv6Interface) as LinkState;
  const stored = storedAddresses(storedPartition(observed, `${settings.partitionBaseName}${i}`));
  for (const value of new Set([stored.v6, partitionAddress6(net.base, i)])) {
    if (value !== undefined && hasAddress(observed, v6.index, AF_INET6, value, net.base.prefixlen)) {
      steps.push({ kind: 'addr-del', dev: v6.name, address: format6(value), prefixlen: net.base.prefixlen });
    }
  }
  if (stored.v4 !== undefined && hasAddress(observed, main.index, AF_INET, stored.v4, 32)) {
    steps.push({ kind: 'addr-del', dev: main.name, address: format4(stored.v4), prefixlen: 32 });
  }
  const lo = link(observed, 'lo');
  try {
    const range = subRange6(net.base, settings.prefixShift, 1, i);
    if (routeExists(observed, AF_INET6, range.network, range.prefixlen, lo?.index, { local: true })) {
      steps.push({ kind: 'route-del', dst: `${format6(range.network)}/${range.prefixlen}`, dev: 'lo', local: true });
    }
  } catch {
    // an index beyond what the shift allows never had a range
  }
  return steps;
}

/**
 * Partitions that were formatted before (their directory exists) but have no
 * record left, neither in the state file nor in their .slapos-resource: the
 * master may still know their addresses.
 */
export function recordlessPartitions(settings: FormatSettings, observed: Observed): string[] {
  const out: string[] = [];
  for (let i = 0; i < settings.partitionAmount; i++) {
    const ref = `${settings.partitionBaseName}${i}`;
    if (!observed.paths.get(path.join(settings.instanceRoot, ref))) continue;
    if (storedPartition(observed, ref) || resourceEntry(observed.files.get(resourcePath(settings, i)), ref)) continue;
    out.push(ref);
  }
  return out;
}

export const resourcePath = (settings: FormatSettings, i: number) =>
  path.join(settings.instanceRoot, `${settings.partitionBaseName}${i}`, '.slapos-resource');
