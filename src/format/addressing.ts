// Address arithmetic for format (slapformat.md §5.5): the partition IPv6, its
// routed range, the tap and tun ranges, and the local IPv4 pool. Pure; all
// IPv6 values are BigInt, and text is RFC 5952 (what the reference's Python
// writes, e.g. "fd00:9::8001:0:0:1"), so state files and reports match it.

import { format4, format6, mask6, netmask6, parse4 } from '../network/address.js';

// The primitives live in the network layer (the netlink codec needs them too).
export { bytes4, bytes6, format4, format6, fromBytes6, mask6, netmask6, parse4, parse6 } from '../network/address.js';

const ALL128 = (1n << 128n) - 1n;

export interface Network4 {
  network: number;
  prefixlen: number;
  /** Number of addresses, network and broadcast included. */
  size: number;
}

export function parseCidr4(text: string): Network4 {
  const [addr, len] = text.split('/');
  const prefixlen = Number(len);
  if (addr === undefined || len === undefined || !Number.isInteger(prefixlen) || prefixlen < 0 || prefixlen > 32) {
    throw new Error(`not an IPv4 network: ${JSON.stringify(text)} (expected a.b.c.d/len)`);
  }
  const size = 2 ** (32 - prefixlen);
  const network = parse4(addr) - (parse4(addr) % size);
  return { network, prefixlen, size };
}

/** The interface prefix everything is derived from. */
export interface Base6 {
  address: bigint;
  prefixlen: number;
}

export interface Range6 {
  /** Network address of the range. */
  network: bigint;
  prefixlen: number;
}

/** Partition i's global address: prefix + (i + 2) in the host bits (as the reference). */
export function partitionAddress6(base: Base6, index: number): bigint {
  const hostBits = 128 - base.prefixlen;
  if (hostBits < 2) throw new Error(`the prefix /${base.prefixlen} leaves no room for partition addresses`);
  const prefix = base.address & mask6(base.prefixlen);
  const span = (1n << BigInt(hostBits)) - 2n;
  return prefix | ((BigInt(index) % span) + 2n);
}

/**
 * Range number `kind` (1 = partition range, 2 = tap, 3 = tun) of partition i:
 * the interface prefix, then `(kind << (shift-2)) + i + 1` on `shift` bits.
 */
export function subRange6(base: Base6, shift: number, kind: 1 | 2 | 3, index: number): Range6 {
  const prefixlen = base.prefixlen + shift;
  if (prefixlen >= 128) {
    throw new Error(`interface prefix /${base.prefixlen} + ipv6_prefixshift ${shift} = /${prefixlen}: too long for partition ranges`);
  }
  const slot = (BigInt(kind) << BigInt(shift - 2)) + BigInt(index) + 1n;
  if (slot >= 1n << BigInt(shift) || BigInt(index) + 1n >= 1n << BigInt(shift - 2)) {
    throw new Error(`ipv6_prefixshift ${shift} is too small for partition index ${index} (needs 2^shift >= 4 x partition_amount)`);
  }
  const prefix = base.address & mask6(base.prefixlen);
  return { network: prefix | (slot << BigInt(128 - prefixlen)), prefixlen };
}

/** The reference's ipv6_range dict. */
export function rangeDict(range: Range6): { addr: string; netmask: string; network: string; prefixlen: number } {
  const addr = format6(range.network);
  return { addr, netmask: netmask6(range.prefixlen), network: `${addr}/${range.prefixlen}`, prefixlen: range.prefixlen };
}

export interface TapIpv6 {
  ipv6_addr: string;
  ipv6_netmask: string;
  ipv6_gateway: string;
  ipv6_network: string;
}

/** Tap range (kind 2): host bits all ones for the tap address, network + 1 as gateway (§5.3). */
export function tapIpv6(base: Base6, shift: number, index: number): TapIpv6 & { range: Range6; address: bigint; gateway: bigint } {
  const range = subRange6(base, shift, 2, index);
  const address = range.network | (~mask6(range.prefixlen) & ALL128);
  const gateway = range.network + 1n;
  // The reference writes +16 here whatever the shift (§5.3); we keep its text for
  // shift 16 and use the real range length otherwise (bug §13.6 not copied).
  return {
    range, address, gateway,
    ipv6_addr: format6(address),
    ipv6_netmask: netmask6(range.prefixlen),
    ipv6_gateway: format6(gateway),
    ipv6_network: `${format6(gateway)}/${range.prefixlen}`,
  };
}

export function contains6(range: Range6, address: bigint): boolean {
  return (address & mask6(range.prefixlen)) === (range.network & mask6(range.prefixlen));
}

/** True for addresses format may build on: not link-local, loopback, multicast or unspecified (ULA counts). */
export function isGlobal6(address: bigint): boolean {
  const top16 = address >> 112n;
  if (address === 0n || address === 1n) return false;
  if ((top16 & 0xffc0n) === 0xfe80n) return false;
  if (top16 >> 8n === 0xffn) return false;
  return true;
}

/**
 * The computer's base address among the interface's global ones (§4.1 step 4):
 * the one whose network holds the previously stored address, else the shortest
 * prefix, ties broken by the lowest address.
 */
export function chooseBase6(candidates: readonly Base6[], stored?: bigint): Base6 | undefined {
  const sorted = [...candidates].sort((a, b) => a.prefixlen - b.prefixlen || (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
  if (stored !== undefined) {
    const holding = sorted
      .filter((c) => contains6({ network: c.address, prefixlen: c.prefixlen }, stored))
      .sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : 0));
    if (holding[0]) return holding[0];
  }
  return sorted[0];
}

/**
 * Local IPv4 addresses for partitions, deterministic (unlike the reference's
 * random pick): a partition keeps its stored address when it is still a usable
 * pool address and not claimed twice; the others get the lowest free pool
 * addresses in partition order. Network and broadcast addresses and `foreign`
 * (addresses the host uses for something else) are never handed out.
 */
export function allocateIpv4(
  pool: Network4,
  count: number,
  stored: ReadonlyArray<number | undefined>,
  foreign: ReadonlySet<number>,
): number[] {
  const first = pool.size > 2 ? pool.network + 1 : pool.network;
  const last = pool.size > 2 ? pool.network + pool.size - 2 : pool.network + pool.size - 1;
  const usable = (a: number) => a >= first && a <= last && !foreign.has(a);
  const taken = new Set<number>();
  const out: (number | undefined)[] = new Array(count).fill(undefined);
  for (let i = 0; i < count; i++) {
    const s = stored[i];
    if (s !== undefined && usable(s) && !taken.has(s)) {
      out[i] = s;
      taken.add(s);
    }
  }
  let next = first;
  for (let i = 0; i < count; i++) {
    if (out[i] !== undefined) continue;
    while (next <= last && (!usable(next) || taken.has(next))) next++;
    if (next > last) {
      throw new Error(
        `ipv4_local_network ${format4(pool.network)}/${pool.prefixlen} is too small for ${count} partitions ` +
          `(${count - i} more addresses needed); give a larger network in [slapformat] ipv4_local_network`,
      );
    }
    out[i] = next;
    taken.add(next);
  }
  return out as number[];
}
