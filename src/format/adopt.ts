// Adopting what exists (pure): a node formatted before (by us, or by the
// reference slapos.core) keeps its layout. What the state file recorded as
// allocated (ipv6_range, tap and tun addressing) is kept as recorded instead of
// being derived again, and the tap mode of an existing node comes from its
// taps, not from the configuration (a contradicting tap_mode is reported, not
// applied). Nothing here knows a particular node's values.
import { AF_INET6, TABLE_MAIN, type LinkState } from '../network/netlink.js';
import { format6, mask6, parse4, parse6, type Range6, type TapIpv6 } from './addressing.js';
import type { Dict } from './computer-xml.js';
import type { Observed } from './observe.js';
import type { FormatSettings } from './settings.js';

export type StoredTap = TapIpv6 & { range: Range6; address: bigint; gateway: bigint };

const isDict = (v: unknown): v is Dict => v !== null && typeof v === 'object' && !Array.isArray(v);
const text = (v: unknown): string => (typeof v === 'string' ? v : '');

/** Prefix length of a netmask in long form ("ffff:ffff::") or "/len" form. */
export function prefixlenOf6(netmask: string): number | undefined {
  if (/^\/?\d+$/.test(netmask)) return Number(netmask.replace('/', ''));
  let value: bigint;
  try {
    value = parse6(netmask);
  } catch {
    return undefined;
  }
  for (let len = 0; len <= 128; len++) if (mask6(len) === value) return len;
  return undefined;
}

/** A stored ipv6_range dict ({addr, prefixlen, netmask, network}) as a range; undefined when absent or unreadable. */
export function storedRange(entry: Dict | undefined): Range6 | undefined {
  const r = entry?.ipv6_range;
  if (!isDict(r)) return undefined;
  try {
    const [addr = '', len = ''] = (text(r.network) || `${text(r.addr)}/${String(r.prefixlen ?? '')}`).split('/');
    const prefixlen = Number(len);
    if (!Number.isInteger(prefixlen) || prefixlen < 1 || prefixlen > 128) return undefined;
    return { network: parse6(addr) & mask6(prefixlen), prefixlen };
  } catch {
    return undefined;
  }
}

/**
 * A stored tap's IPv6 (ipv6_addr, ipv6_netmask, ipv6_gateway, ipv6_network) as
 * recorded, byte for byte; undefined when the tap had none (bridged, or
 * tap_ipv6 = false) or it is unreadable.
 */
export function storedTapIpv6(entry: Dict | undefined): StoredTap | undefined {
  const tap = entry?.tap;
  if (!isDict(tap) || text(tap.ipv6_addr) === '') return undefined;
  try {
    const address = parse6(text(tap.ipv6_addr));
    const prefixlen = prefixlenOf6(text(tap.ipv6_netmask)) ?? Number(text(tap.ipv6_network).split('/')[1]);
    if (!Number.isInteger(prefixlen) || prefixlen < 1 || prefixlen > 128) return undefined;
    const range = { network: address & mask6(prefixlen), prefixlen };
    const gateway = text(tap.ipv6_gateway) ? parse6(text(tap.ipv6_gateway)) : range.network + 1n;
    return {
      range, address, gateway,
      ipv6_addr: text(tap.ipv6_addr),
      ipv6_netmask: text(tap.ipv6_netmask),
      ipv6_gateway: text(tap.ipv6_gateway) || format6(gateway),
      ipv6_network: text(tap.ipv6_network) || `${format6(gateway)}/${prefixlen}`,
    };
  } catch {
    return undefined;
  }
}

export interface StoredTapIpv4 {
  ipv4_addr: string;
  ipv4_netmask: string;
  ipv4_gateway: string;
  ipv4_network: string;
}

/**
 * A stored tap's IPv4 fields (the reference fills them with
 * tap_gateway_interface), kept as recorded: we do not hand out tap IPv4s
 * ourselves, but an adopted partition keeps the ones it has.
 */
export function storedTapIpv4(entry: Dict | undefined): StoredTapIpv4 | undefined {
  const tap = entry?.tap;
  if (!isDict(tap) || text(tap.ipv4_addr) === '') return undefined;
  return { ipv4_addr: text(tap.ipv4_addr), ipv4_netmask: text(tap.ipv4_netmask), ipv4_gateway: text(tap.ipv4_gateway), ipv4_network: text(tap.ipv4_network) };
}

/** A stored tun's addressing; undefined when there was no tun or it is unreadable. */
export function storedTun(entry: Dict | undefined): { ipv4: number; ipv4Prefixlen: number; ipv6?: { address: bigint; range: Range6 } } | undefined {
  const tun = entry?.tun;
  if (!isDict(tun) || text(tun.ipv4_addr) === '') return undefined;
  try {
    const ipv4 = parse4(text(tun.ipv4_addr));
    const mask = parse4(text(tun.ipv4_netmask));
    const ipv4Prefixlen = 32 - Math.log2(2 ** 32 - mask);
    if (!Number.isInteger(ipv4Prefixlen)) return undefined;
    const out: { ipv4: number; ipv4Prefixlen: number; ipv6?: { address: bigint; range: Range6 } } = { ipv4, ipv4Prefixlen };
    if (text(tun.ipv6_addr) !== '') {
      const address = parse6(text(tun.ipv6_addr));
      const prefixlen = prefixlenOf6(text(tun.ipv6_netmask)) ?? Number(text(tun.ipv6_network).split('/')[1]);
      if (Number.isInteger(prefixlen)) out.ipv6 = { address, range: { network: address & mask6(prefixlen), prefixlen } };
    }
    return out;
  } catch {
    return undefined;
  }
}

export interface ModeDecision {
  mode: 'bridge' | 'route';
  /** Where the mode came from, for the log. */
  source: 'existing' | 'config' | 'default';
  /** Set when slapos.cfg asks for another mode than the node has: reported, not applied. */
  contradiction?: string;
  /** The taps that show an existing node's mode (source 'existing'). */
  evidence?: string[];
}

/**
 * The tap mode. An existing node keeps its mode: a tap of ours enslaved to a
 * bridge says "bridge"; a tap of ours that is not enslaved and carries an
 * address or a route, or a stored partition whose tap has IPv6 addressing (the
 * reference routes its taps), says "route". Both at once is refused. Without
 * evidence (a new node), tap_mode decides, else the kind of interface_name.
 */
export function decideTapMode(settings: FormatSettings, observed: Observed, main: LinkState, storedEntries: (Dict | undefined)[]): ModeDecision {
  const wanted = settings.tapMode ?? (main.kind === 'bridge' ? 'bridge' : 'route');
  const byName = new Map(observed.links.map((l) => [l.name, l]));
  // Devices with a global IPv6 address or an IPv6 route in the main table, by index.
  // Link-local addresses and fe80::/64 routes come by themselves once a tap has carrier: not evidence.
  const carrying = new Set<number>([
    ...observed.addresses.filter((a) => a.family === AF_INET6 && (a.value as bigint) >> 118n !== 0x3fan).map((a) => a.index),
    ...observed.routes.filter((r) => r.table === TABLE_MAIN && r.family === AF_INET6 && r.oif !== undefined && (r.dst as bigint) >> 118n !== 0x3fan).map((r) => r.oif as number),
  ]);
  const bridged: string[] = [];
  const routed: string[] = [];
  for (let i = 0; i < settings.partitionAmount; i++) {
    const name = `${settings.tapBaseName}${i}`;
    const tap = byName.get(name);
    if (tap) {
      if (tap.master !== undefined && tap.master !== 0) bridged.push(name);
      else if (carrying.has(tap.index)) routed.push(name);
    }
    if (!tap?.master && storedTapIpv6(storedEntries[i]) && !routed.includes(name)) routed.push(name);
  }
  if (bridged.length > 0 && routed.length > 0) {
    throw new ModeConflictError(
      `the taps of this node disagree: ${bridged.join(', ')} ${bridged.length === 1 ? 'is' : 'are'} bridged and ${routed.join(', ')} ${routed.length === 1 ? 'is' : 'are'} routed; ` +
        'format will not re-wire partitions on its own: bring them to one mode by hand (or remove the odd taps) and re-run',
    );
  }
  const existing = bridged.length > 0 ? 'bridge' : routed.length > 0 ? 'route' : undefined;
  if (!existing) return { mode: wanted, source: settings.tapMode ? 'config' : 'default' };
  if (settings.tapMode && settings.tapMode !== existing) {
    const evidence = existing === 'bridge' ? bridged : routed;
    return {
      mode: existing,
      source: 'existing',
      evidence,
      contradiction: `[slapformat] tap_mode = ${settings.tapMode} contradicts this node: its taps are ${existing === 'bridge' ? 'bridged' : 'routed'} (${evidence.slice(0, 3).join(', ')}${evidence.length > 3 ? ', …' : ''}); keeping ${existing} (changing the mode of a formatted node would cut its partitions off)`,
    };
  }
  return { mode: existing, source: 'existing', evidence: existing === 'bridge' ? bridged : routed };
}

export class ModeConflictError extends Error {
  override name = 'ModeConflictError';
}

/** The partition dict a `.slapos-resource` holds, if it is readable and names this partition. */
export function resourceEntry(text: string | null | undefined, reference: string): Dict | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    return isDict(value) && value.reference === reference ? value : undefined;
  } catch {
    return undefined;
  }
}

const addressText = (entry: Dict): string => {
  const list = Array.isArray(entry.address_list) ? entry.address_list : [];
  return list.map((a) => (isDict(a) ? text(a.addr) : '')).filter((a) => a !== '').join(', ') || 'no address';
};

export interface PartitionRecord {
  entry?: Dict;
  /** What was reconciled, for the log: set when the state file was not the record used. */
  note?: string;
}

/**
 * The record of what partition `reference` was given. The state file
 * (computer_xml) is the record. When it lacks the partition (lost, or restored
 * from a backup older than the partition), or when what it records is not on
 * the kernel while another record is, the kernel wins: the first record that
 * the kernel confirms is used (the partition's .slapos-resource, then the
 * master's ip_list), else the first record there is; the note says so.
 */
export function partitionRecord(
  reference: string,
  fromStateFile: Dict | undefined,
  fromResource: Dict | undefined,
  live: (entry: Dict) => boolean,
  fromMaster?: Dict,
): PartitionRecord {
  const candidates: [string, Dict | undefined][] = [['the state file', fromStateFile], ["the partition's .slapos-resource", fromResource], ['the master', fromMaster]];
  const sources = candidates.filter((s): s is [string, Dict] => s[1] !== undefined);
  const chosen = sources.find((s) => live(s[1])) ?? sources[0];
  if (!chosen) return {};
  if (chosen[1] === fromStateFile) return { entry: fromStateFile };
  if (fromStateFile) {
    return {
      entry: chosen[1],
      note: `${reference}: the state file records ${addressText(fromStateFile)}, but the kernel has ${addressText(chosen[1])} (as ${chosen[0]} says): keeping the kernel's`,
    };
  }
  return { entry: chosen[1], note: `${reference}: not in the state file; its addresses (${addressText(chosen[1])}) are taken from ${chosen[0]}${live(chosen[1]) ? ' and the kernel' : ''}` };
}

/**
 * A record from the master's ip_list of an allocated partition
 * (getFullComputerInformation): its first IPv4 and first IPv6, the addresses
 * format reported. Undefined when the master sent none.
 */
export function masterEntry(reference: string, ipList: readonly (readonly [string, string])[]): Dict | undefined {
  const v4 = ipList.find(([, a]) => /^\d+\.\d+\.\d+\.\d+$/.test(a))?.[1];
  const v6 = ipList.find(([, a]) => a.includes(':'))?.[1];
  if (v4 === undefined || v6 === undefined) return undefined;
  return { reference, address_list: [{ addr: v4, netmask: '255.255.255.255' }, { addr: v6, netmask: '' }] };
}
