// The rtnetlink messages format sends and the answers it reads (links,
// addresses, routes), as bytes. The netlink package's rtnetlink layer decodes
// every attribute of every message (link statistics included) and loading it
// costs more than format's whole re-run budget allows; we build and read only
// the fields we use. Layouts: <linux/rtnetlink.h>, <linux/if_link.h>,
// <linux/if_addr.h>.
import { bytes4, bytes6, fromBytes6 } from './address.js';

export const AF_INET = 2;
export const AF_INET6 = 10;

export interface LinkState {
  index: number;
  name: string;
  /** IFLA_INFO_KIND ("bridge", "veth", "tun", …), undefined for plain devices. */
  kind?: string;
  master?: number;
  up: boolean;
  /** The kernel sees a carrier (IFF_LOWER_UP): DAD can run. */
  lowerUp: boolean;
  /** A tun/tap device's settings, from IFLA_INFO_DATA (the same values as its sysfs files). */
  tun?: TunInfo;
}

/** What the tun driver reports of its device (IFLA_TUN_*); owner and group are -1 when unset. */
export interface TunInfo {
  owner: number;
  group: number;
  type: 'tun' | 'tap';
  persist: boolean;
}

export interface AddressState {
  index: number;
  family: number;
  /** IPv4 as number, IPv6 as bigint. */
  value: number | bigint;
  prefixlen: number;
  tentative: boolean;
  dadfailed: boolean;
  noprefixroute: boolean;
}

export interface RouteState {
  family: number;
  table: number;
  /** "UNICAST", "LOCAL", … */
  type: string;
  dst: number | bigint;
  dstLen: number;
  oif?: number;
  gateway?: number | bigint;
}

/** Attributes after a fixed header: type (without the nested/byte-order bits) → payload. */
export function nlattrs(buffer: Buffer, offset = 0): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  while (offset + 4 <= buffer.length) {
    const len = buffer.readUInt16LE(offset);
    const type = buffer.readUInt16LE(offset + 2) & 0x3fff;
    if (len < 4 || offset + len > buffer.length) break;
    if (!out.has(type)) out.set(type, buffer.subarray(offset + 4, offset + len));
    offset += (len + 3) & ~3;
  }
  return out;
}

/** One attribute: 4-byte header, payload, padding to 4 bytes. */
export function nlattr(type: number, payload: Buffer): Buffer {
  const out = Buffer.alloc((4 + payload.length + 3) & ~3);
  out.writeUInt16LE(4 + payload.length, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

const cstring = (b: Buffer) => b.toString('utf8').replace(/\0+$/, '');

function ipValue(family: number, buffer: Buffer | undefined): number | bigint | undefined {
  if (!buffer) return undefined;
  if (family === AF_INET6) return buffer.length >= 16 ? fromBytes6(buffer) : undefined;
  return buffer.length >= 4 ? buffer.readUInt32BE(0) : undefined;
}

const IFF_UP = 0x1;
const IFF_LOWER_UP = 0x10000;
const IFLA_IFNAME = 3;
const IFLA_MASTER = 10;
const IFLA_LINKINFO = 18;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
// <linux/if_link.h> IFLA_TUN_*; the driver leaves OWNER and GROUP out when they are unset.
const IFLA_TUN_OWNER = 1;
const IFLA_TUN_GROUP = 2;
const IFLA_TUN_TYPE = 3;
const IFLA_TUN_PERSIST = 6;
const IFF_TUN = 0x1;

/** IFLA_INFO_DATA of a "tun" link; undefined when the kernel did not send its type. */
export function parseTunData(data: Buffer): TunInfo | undefined {
  const attrs = nlattrs(data);
  const type = attrs.get(IFLA_TUN_TYPE);
  if (!type || type.length < 1) return undefined;
  const u32At = (key: number) => {
    const b = attrs.get(key);
    return b && b.length >= 4 ? b.readUInt32LE(0) : -1;
  };
  return {
    owner: u32At(IFLA_TUN_OWNER),
    group: u32At(IFLA_TUN_GROUP),
    type: (type.readUInt8(0) & IFF_TUN) !== 0 ? 'tun' : 'tap',
    persist: (attrs.get(IFLA_TUN_PERSIST)?.readUInt8(0) ?? 0) !== 0,
  };
}

/** struct ifinfomsg (16 bytes) + attributes. */
export function parseLink(data: Buffer): LinkState {
  const flags = data.readUInt32LE(8);
  const attrs = nlattrs(data, 16);
  const info = attrs.get(IFLA_LINKINFO);
  const infoAttrs = info ? nlattrs(info) : undefined;
  const kindBytes = infoAttrs?.get(IFLA_INFO_KIND);
  const kind = kindBytes ? cstring(kindBytes) : undefined;
  const tunData = kind === 'tun' ? infoAttrs?.get(IFLA_INFO_DATA) : undefined;
  const tun = tunData ? parseTunData(tunData) : undefined;
  const master = attrs.get(IFLA_MASTER)?.readUInt32LE(0);
  return {
    index: data.readInt32LE(4),
    name: cstring(attrs.get(IFLA_IFNAME) ?? Buffer.alloc(0)),
    ...(kind !== undefined ? { kind } : {}),
    ...(master ? { master } : {}),
    up: (flags & IFF_UP) !== 0,
    lowerUp: (flags & IFF_LOWER_UP) !== 0,
    ...(tun ? { tun } : {}),
  };
}

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_FLAGS = 8;
const IFA_F_DADFAILED = 0x08;
const IFA_F_TENTATIVE = 0x40;
const IFA_F_NOPREFIXROUTE = 0x200;

/** struct ifaddrmsg (8 bytes) + attributes; undefined for other families. */
export function parseAddress(data: Buffer): AddressState | undefined {
  const family = data.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const attrs = nlattrs(data, 8);
  // IFA_LOCAL is the address itself on point-to-point links; IFA_ADDRESS otherwise.
  const value = ipValue(family, attrs.get(IFA_LOCAL) ?? attrs.get(IFA_ADDRESS));
  if (value === undefined) return undefined;
  // IFA_FLAGS (32 bits) extends the 8-bit ifa_flags.
  const flags = data.readUInt8(2) | (attrs.get(IFA_FLAGS)?.readUInt32LE(0) ?? 0);
  return {
    index: data.readUInt32LE(4),
    family,
    value,
    prefixlen: data.readUInt8(1),
    tentative: (flags & IFA_F_TENTATIVE) !== 0,
    dadfailed: (flags & IFA_F_DADFAILED) !== 0,
    noprefixroute: (flags & IFA_F_NOPREFIXROUTE) !== 0,
  };
}

const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_TABLE = 15;
const ROUTE_TYPES = ['UNSPEC', 'UNICAST', 'LOCAL', 'BROADCAST', 'ANYCAST', 'MULTICAST', 'BLACKHOLE', 'UNREACHABLE', 'PROHIBIT', 'THROW', 'NAT', 'XRESOLVE'];

/** struct rtmsg (12 bytes) + attributes; undefined for other families. */
export function parseRoute(data: Buffer): RouteState | undefined {
  const family = data.readUInt8(0);
  if (family !== AF_INET && family !== AF_INET6) return undefined;
  const attrs = nlattrs(data, 12);
  const type = data.readUInt8(7);
  const oif = attrs.get(RTA_OIF)?.readUInt32LE(0);
  const gateway = ipValue(family, attrs.get(RTA_GATEWAY));
  return {
    family,
    table: attrs.get(RTA_TABLE)?.readUInt32LE(0) ?? data.readUInt8(4),
    type: ROUTE_TYPES[type] ?? String(type),
    dst: ipValue(family, attrs.get(RTA_DST)) ?? (family === AF_INET6 ? 0n : 0),
    dstLen: data.readUInt8(1),
    ...(oif !== undefined ? { oif } : {}),
    ...(gateway !== undefined ? { gateway } : {}),
  };
}

const IFLA_EXT_MASK = 29;
const RTEXT_FILTER_SKIP_STATS = 1 << 3;

/**
 * The link dump's request: struct ifinfomsg + IFLA_EXT_MASK asking the kernel
 * to leave out the counters (IFLA_STATS, IFLA_STATS64: about half of each
 * answer), which format never reads. A kernel older than the flag ignores it.
 */
export function linkDumpRequest(): Buffer {
  return Buffer.concat([Buffer.alloc(16), nlattr(IFLA_EXT_MASK, u32(RTEXT_FILTER_SKIP_STATS))]);
}

/** A link request addressed by name: struct ifinfomsg + IFLA_IFNAME. */
export function linkByNameRequest(name: string): Buffer {
  return Buffer.concat([Buffer.alloc(16), nlattr(IFLA_IFNAME, Buffer.from(`${name}\0`))]);
}

// ---- requests ----

export const RTM = { NEWLINK: 16, GETLINK: 18, SETLINK: 19, NEWADDR: 20, DELADDR: 21, GETADDR: 22, NEWROUTE: 24, DELROUTE: 25, GETROUTE: 26 } as const;

const u32 = (value: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0, 0);
  return b;
};

export function ipBytes(family: number, value: number | bigint): Buffer {
  return family === AF_INET6 ? bytes6(value as bigint) : bytes4(value as number);
}

/** struct ifinfomsg: set `flags` within the bits of `change`, plus attributes. */
export function linkMessage(index: number, flags: number, change: number, attrs: Buffer[] = []): Buffer {
  const header = Buffer.alloc(16);
  header.writeInt32LE(index, 4);
  header.writeUInt32LE(flags, 8);
  header.writeUInt32LE(change, 12);
  return Buffer.concat([header, ...attrs]);
}

export const setUpMessage = (index: number) => linkMessage(index, IFF_UP, IFF_UP);
export const setMasterMessage = (index: number, master: number) => linkMessage(index, 0, 0, [nlattr(IFLA_MASTER, u32(master))]);

const IFA_F_NODAD = 0x02;

/** struct ifaddrmsg + IFA_LOCAL, IFA_ADDRESS (and IFA_FLAGS when adding). */
export function addressMessage(family: number, value: number | bigint, prefixlen: number, index: number, add?: { noprefixroute?: boolean; nodad?: boolean }): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt8(family, 0);
  header.writeUInt8(prefixlen, 1);
  header.writeUInt8(add?.nodad ? IFA_F_NODAD : 0, 2);
  header.writeUInt32LE(index, 4);
  const bytes = ipBytes(family, value);
  const attrs = [nlattr(IFA_LOCAL, bytes), nlattr(IFA_ADDRESS, bytes)];
  if (add) attrs.push(nlattr(IFA_FLAGS, u32((add.noprefixroute ? IFA_F_NOPREFIXROUTE : 0) | (add.nodad ? IFA_F_NODAD : 0))));
  return Buffer.concat([header, ...attrs]);
}

export interface RouteSpec {
  family: number;
  dst: number | bigint;
  dstLen: number;
  oif: number;
  gateway?: number | bigint;
  local?: boolean;
}

const TABLE_MAIN = 254;
const TABLE_LOCAL = 255;
const RTPROT_BOOT = 3;
const SCOPE_UNIVERSE = 0;
const SCOPE_LINK = 253;
const SCOPE_HOST = 254;
const RTN_UNICAST = 1;
const RTN_LOCAL = 2;

/**
 * struct rtmsg + attributes: unicast via `oif` (optionally through `gateway`),
 * or a `local` route in the local table (the partition IPv6 ranges, so that
 * partitions can bind any address of their range).
 */
export function routeMessage(route: RouteSpec): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt8(route.family, 0);
  header.writeUInt8(route.dstLen, 1);
  header.writeUInt8(route.local ? TABLE_LOCAL : TABLE_MAIN, 4);
  header.writeUInt8(RTPROT_BOOT, 5);
  header.writeUInt8(route.local ? SCOPE_HOST : route.gateway !== undefined ? SCOPE_UNIVERSE : SCOPE_LINK, 6);
  header.writeUInt8(route.local ? RTN_LOCAL : RTN_UNICAST, 7);
  const attrs = [nlattr(RTA_DST, ipBytes(route.family, route.dst)), nlattr(RTA_OIF, u32(route.oif))];
  if (route.local) attrs.push(nlattr(RTA_TABLE, u32(TABLE_LOCAL)));
  if (route.gateway !== undefined) attrs.push(nlattr(RTA_GATEWAY, ipBytes(route.family, route.gateway)));
  return Buffer.concat([header, ...attrs]);
}
