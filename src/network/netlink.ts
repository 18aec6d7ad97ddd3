// The few rtnetlink operations format needs, over the `netlink` package (no
// `ip` processes): list links, addresses and routes; set links up and into a
// bridge; add and delete addresses and routes. Values are plain data (IPv6 as
// BigInt, IPv4 as number) so that plans can compare them.
import { createRtNetlink, FlagsGet, FlagsNew, type RtNetlinkSocket } from 'netlink';
import { bytes4, bytes6 } from '../format/addressing.js';
import { AF_INET, AF_INET6, linkByNameRequest, parseAddress, parseLink, parseRoute, type AddressState, type LinkState, type RouteState } from './rtnl-parse.js';

export { AF_INET, AF_INET6 };
export type { AddressState, LinkState, RouteState };
export const TABLE_MAIN = 254;
export const TABLE_LOCAL = 255;

export type IpValue = { family: typeof AF_INET; value: number } | { family: typeof AF_INET6; value: bigint };

const RTM_GETLINK = 18;
const RTM_GETADDR = 22;
const RTM_GETROUTE = 26;

function ipBytes(family: number, value: number | bigint): Buffer {
  return family === AF_INET6 ? bytes6(value as bigint) : bytes4(value as number);
}

export class Rtnl {
  private readonly socket: RtNetlinkSocket;

  constructor() {
    this.socket = createRtNetlink();
  }

  close(): void {
    this.socket.socket.close();
  }

  /** A request answered with raw messages, decoded by rtnl-parse (reads are format's hot path). */
  private async raw(type: number, payload: Buffer, dump: boolean): Promise<Buffer[]> {
    const [messages] = await this.socket.socket.request(type, payload, dump ? { flags: FlagsGet.DUMP } : {});
    return messages.map((m) => m.data);
  }

  async links(): Promise<LinkState[]> {
    return (await this.raw(RTM_GETLINK, Buffer.alloc(16), true)).map(parseLink);
  }

  /** One link by name (a single answer, not a dump); undefined if there is none. */
  async link(name: string): Promise<LinkState | undefined> {
    try {
      const [data] = await this.raw(RTM_GETLINK, linkByNameRequest(name), false);
      return data ? parseLink(data) : undefined;
    } catch (error) {
      if (netlinkCode(error) === 'ENODEV') return undefined;
      throw error;
    }
  }

  /** Addresses of one family (the kernel filters the dump), or all. */
  async addresses(family?: typeof AF_INET | typeof AF_INET6): Promise<AddressState[]> {
    const header = Buffer.alloc(8);
    header.writeUInt8(family ?? 0, 0);
    return (await this.raw(RTM_GETADDR, header, true)).map(parseAddress).filter((a): a is AddressState => a !== undefined);
  }

  async routes(): Promise<RouteState[]> {
    return (await this.raw(RTM_GETROUTE, Buffer.alloc(12), true)).map(parseRoute).filter((r): r is RouteState => r !== undefined);
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
