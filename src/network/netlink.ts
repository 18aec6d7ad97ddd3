// The few rtnetlink operations format needs, over the `netlink` package (no
// `ip` processes): list links, addresses and routes; set links up and into a
// bridge; add and delete addresses and routes. Values are plain data (IPv6 as
// BigInt, IPv4 as number) so that plans can compare them.
import { createRtNetlink, FlagsNew, type RtNetlinkSocket } from 'netlink';
import { bytes4, bytes6, fromBytes6 } from '../format/addressing.js';

export const AF_INET = 2;
export const AF_INET6 = 10;
export const TABLE_MAIN = 254;
export const TABLE_LOCAL = 255;

export interface LinkState {
  index: number;
  name: string;
  /** IFLA_INFO_KIND ("bridge", "veth", "tun", …), undefined for plain devices. */
  kind?: string;
  master?: number;
  up: boolean;
  /** The kernel sees a carrier (IFF_LOWER_UP): DAD can run. */
  lowerUp: boolean;
}

export type IpValue = { family: typeof AF_INET; value: number } | { family: typeof AF_INET6; value: bigint };

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

/** Reads nlattrs from a buffer: type → payload. */
function nlattrs(buffer: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let offset = 0;
  while (offset + 4 <= buffer.length) {
    const len = buffer.readUInt16LE(offset);
    const type = buffer.readUInt16LE(offset + 2) & 0x3fff;
    if (len < 4) break;
    out.set(type, buffer.subarray(offset + 4, offset + len));
    offset += (len + 3) & ~3;
  }
  return out;
}

function ipValue(family: number, buffer: Buffer | undefined): number | bigint | undefined {
  if (!buffer) return undefined;
  return family === AF_INET6 ? fromBytes6(buffer) : buffer.readUInt32BE(0);
}

function ipBytes(family: number, value: number | bigint): Buffer {
  return family === AF_INET6 ? bytes6(value as bigint) : bytes4(value as number);
}

type LinkMessage = Awaited<ReturnType<RtNetlinkSocket['getLinks']>>[number];

function linkState(m: LinkMessage): LinkState {
  const info = m.attrs.linkinfo ? nlattrs(m.attrs.linkinfo).get(1) : undefined;
  const kind = info ? info.toString('utf8').replace(/\0+$/, '') : undefined;
  const flags = m.data.flags ?? {};
  return {
    index: m.data.index ?? 0,
    name: m.attrs.ifname ?? '',
    ...(kind ? { kind } : {}),
    ...(m.attrs.master ? { master: m.attrs.master } : {}),
    up: flags.up === true,
    lowerUp: flags.lowerUp === true,
  };
}

export class Rtnl {
  private readonly socket: RtNetlinkSocket;

  constructor() {
    this.socket = createRtNetlink();
  }

  close(): void {
    this.socket.socket.close();
  }

  async links(): Promise<LinkState[]> {
    return (await this.socket.getLinks()).map(linkState);
  }

  /** One link by name (a single answer, not a dump); undefined if there is none. */
  async link(name: string): Promise<LinkState | undefined> {
    try {
      const [message] = await this.socket.getLink({}, { ifname: name });
      return message ? linkState(message) : undefined;
    } catch (error) {
      if (netlinkCode(error) === 'ENODEV') return undefined;
      throw error;
    }
  }

  /** Addresses of one family (the kernel filters the dump), or all. */
  async addresses(family?: typeof AF_INET | typeof AF_INET6): Promise<AddressState[]> {
    const messages = await this.socket.getAddresses(family ? { family } : {});
    const out: AddressState[] = [];
    for (const m of messages) {
      const family = m.data.family ?? 0;
      if (family !== AF_INET && family !== AF_INET6) continue;
      // IFA_LOCAL is the address itself on point-to-point links; IFA_ADDRESS otherwise.
      const value = ipValue(family, m.attrs.local ?? m.attrs.address);
      if (value === undefined) continue;
      const flags = { ...(m.data.flags ?? {}), ...(m.attrs.flags ?? {}) };
      out.push({
        index: m.data.index ?? 0,
        family,
        value,
        prefixlen: m.data.prefixlen ?? 0,
        tentative: flags.tentative === true,
        dadfailed: flags.dadfailed === true,
        noprefixroute: flags.noprefixroute === true,
      });
    }
    return out;
  }

  async routes(): Promise<RouteState[]> {
    const messages = await this.socket.getRoutes();
    const out: RouteState[] = [];
    for (const m of messages) {
      const family = m.data.family ?? 0;
      if (family !== AF_INET && family !== AF_INET6) continue;
      const dst = ipValue(family, m.attrs.dst) ?? (family === AF_INET6 ? 0n : 0);
      const gateway = ipValue(family, m.attrs.gateway);
      out.push({
        family,
        table: m.attrs.table ?? m.data.table ?? 0,
        type: String(m.data.type ?? ''),
        dst,
        dstLen: m.data.dstLen ?? 0,
        ...(m.attrs.oif !== undefined ? { oif: m.attrs.oif } : {}),
        ...(gateway !== undefined ? { gateway } : {}),
      });
    }
    return out;
  }

  async setUp(index: number): Promise<void> {
    await this.socket.setLink({ index, change: { up: true }, flags: { up: true } });
  }

  async setMaster(index: number, master: number): Promise<void> {
    await this.socket.setLink({ index }, { master });
  }

  async addAddress(index: number, ip: IpValue, prefixlen: number, options: { noprefixroute?: boolean; nodad?: boolean } = {}): Promise<void> {
    const bytes = ipBytes(ip.family, ip.value);
    const flags = { ...(options.noprefixroute ? { noprefixroute: true as const } : {}), ...(options.nodad ? { nodad: true as const } : {}) };
    await this.socket.newAddress(
      { family: ip.family, prefixlen, index, ...(options.nodad ? { flags: { nodad: true } } : {}) },
      { local: bytes, address: bytes, flags },
      { flags: FlagsNew.CREATE | FlagsNew.EXCL },
    );
  }

  async delAddress(index: number, ip: IpValue, prefixlen: number): Promise<void> {
    const bytes = ipBytes(ip.family, ip.value);
    await this.socket.delAddress({ family: ip.family, prefixlen, index }, { local: bytes, address: bytes });
  }

  /**
   * Adds a route: unicast via `oif` (optionally through `gateway`), or a
   * `local` route in the local table (the partition IPv6 ranges, so that
   * partitions can bind any address of their range).
   */
  async addRoute(route: RouteSpec): Promise<void> {
    await this.socket.newRoute(routeData(route), routeAttrs(route), { flags: FlagsNew.CREATE | FlagsNew.EXCL });
  }

  async delRoute(route: RouteSpec): Promise<void> {
    await this.socket.delRoute(routeData(route), routeAttrs(route));
  }
}

export interface RouteSpec {
  family: number;
  dst: number | bigint;
  dstLen: number;
  oif: number;
  gateway?: number | bigint;
  local?: boolean;
}

function routeData(route: RouteSpec) {
  return {
    family: route.family,
    dstLen: route.dstLen,
    table: route.local ? TABLE_LOCAL : TABLE_MAIN,
    protocol: 'BOOT' as const,
    scope: route.local ? ('HOST' as const) : route.gateway !== undefined ? ('UNIVERSE' as const) : ('LINK' as const),
    type: route.local ? ('LOCAL' as const) : ('UNICAST' as const),
  };
}

function routeAttrs(route: RouteSpec) {
  return {
    dst: ipBytes(route.family, route.dst),
    oif: route.oif,
    ...(route.local ? { table: TABLE_LOCAL } : {}),
    ...(route.gateway !== undefined ? { gateway: ipBytes(route.family, route.gateway) } : {}),
  };
}

/** errno name of a netlink failure ("EEXIST"), from its message. */
export function netlinkCode(error: unknown): string | undefined {
  const message = error instanceof Error ? error.message : String(error);
  return /\b(E[A-Z]+)\b/.exec(message)?.[1];
}
