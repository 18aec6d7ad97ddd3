// The few rtnetlink operations format needs, over the `netlink` package's
// socket (no `ip` processes): list links, addresses and routes; set links up
// and into a bridge; add and delete addresses and routes. Values are plain
// data (IPv6 as BigInt, IPv4 as number) so that plans can compare them. The
// messages themselves are built and read by rtnl-codec.ts: only the package's
// socket layer is loaded, not its rtnetlink, wireguard or nl80211 layers.
import { createNetlink, type NetlinkSocket } from 'netlink/dist/netlink.js';
import {
  AF_INET, AF_INET6, RTM, addressMessage, linkByNameRequest, linkDumpRequest, parseAddress, parseLink, parseRoute, routeMessage,
  setMasterMessage, setUpMessage, type AddressState, type LinkState, type RouteSpec, type RouteState, type TunInfo,
} from './rtnl-codec.js';

export { AF_INET, AF_INET6 };
export type { AddressState, LinkState, RouteSpec, RouteState, TunInfo };
export const TABLE_MAIN = 254;
export const TABLE_LOCAL = 255;

export type IpValue = { family: typeof AF_INET; value: number } | { family: typeof AF_INET6; value: bigint };

const NETLINK_ROUTE = 0;
// <linux/netlink.h> request flags (REQUEST and ACK are added by the socket).
const NLM_F_DUMP = 0x300;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;

export class Rtnl {
  private readonly socket: NetlinkSocket;

  constructor() {
    this.socket = createNetlink(NETLINK_ROUTE);
  }

  close(): void {
    this.socket.close();
  }

  /** The dump in progress on this socket, if any. */
  private dumping: Promise<unknown> | undefined;

  /**
   * One request; resolves with the answer's payloads, rejects with the
   * kernel's errno. Nothing is sent while a dump runs: the kernel refuses a
   * second dump on the socket (EBUSY), and any other answer would land among
   * the dump's parts, which the socket layer then takes for an unterminated
   * multipart answer. Requests already sent are answered before a dump starts.
   */
  private async request(type: number, payload: Buffer, flags = 0): Promise<Buffer[]> {
    while (this.dumping) await this.dumping.catch(() => undefined);
    const answer = this.socket.request(type, payload, { flags });
    if ((flags & NLM_F_DUMP) === NLM_F_DUMP) {
      this.dumping = answer;
      void answer.finally(() => {
        if (this.dumping === answer) this.dumping = undefined;
      }).catch(() => undefined);
    }
    const [messages] = await answer;
    return messages.map((m) => m.data);
  }

  async links(): Promise<LinkState[]> {
    return (await this.request(RTM.GETLINK, linkDumpRequest(), NLM_F_DUMP)).map(parseLink);
  }

  /** One link by name (a single answer, not a dump); undefined if there is none. */
  async link(name: string): Promise<LinkState | undefined> {
    try {
      const [data] = await this.request(RTM.GETLINK, linkByNameRequest(name));
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
    return (await this.request(RTM.GETADDR, header, NLM_F_DUMP)).map(parseAddress).filter((a): a is AddressState => a !== undefined);
  }

  async routes(): Promise<RouteState[]> {
    return (await this.request(RTM.GETROUTE, Buffer.alloc(12), NLM_F_DUMP)).map(parseRoute).filter((r): r is RouteState => r !== undefined);
  }

  async setUp(index: number): Promise<void> {
    await this.request(RTM.SETLINK, setUpMessage(index));
  }

  async setMaster(index: number, master: number): Promise<void> {
    await this.request(RTM.SETLINK, setMasterMessage(index, master));
  }

  async addAddress(index: number, ip: IpValue, prefixlen: number, options: { noprefixroute?: boolean; nodad?: boolean } = {}): Promise<void> {
    await this.request(RTM.NEWADDR, addressMessage(ip.family, ip.value, prefixlen, index, options), NLM_F_CREATE | NLM_F_EXCL);
  }

  async delAddress(index: number, ip: IpValue, prefixlen: number): Promise<void> {
    await this.request(RTM.DELADDR, addressMessage(ip.family, ip.value, prefixlen, index));
  }

  async addRoute(route: RouteSpec): Promise<void> {
    await this.request(RTM.NEWROUTE, routeMessage(route), NLM_F_CREATE | NLM_F_EXCL);
  }

  async delRoute(route: RouteSpec): Promise<void> {
    await this.request(RTM.DELROUTE, routeMessage(route));
  }
}

/** errno name of a netlink failure ("EEXIST"), from its message. */
export function netlinkCode(error: unknown): string | undefined {
  const message = error instanceof Error ? error.message : String(error);
  return /\b(E[A-Z]+)\b/.exec(message)?.[1];
}
