// Who is on the other end of a plain-HTTP loopback connection, as the kernel
// knows it (docs/master.md, "Access by kernel identity"): the uid owning the
// client's socket, from the kernel's socket diagnostics when the caller gives
// that lookup (the native addon's NETLINK_SOCK_DIAG), else from the network
// namespace's /proc/net/tcp{,6}. The
// client's socket is the row whose local end is the connection's remote end
// and whose remote end is its local end; its uid column is the uid that
// created the socket. A local partition user is then the partition whose
// directory it owns under instance_root (root's directory: the user can
// neither rename nor chown the entry). The one reader of the socket table:
// the authorizer (authorize.ts) and the network cache's "root on loopback"
// upload check (cache-routes.ts) both ask here.
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isIPv4, isIPv6 } from 'node:net';

/** An address and port as /proc/net/tcp{,6} spell them ("0100007F:1F90"). Pure. */
export function procNetEndpoint(address: string, port: number): { table: 'tcp' | 'tcp6'; text: string } {
  const portHex = port.toString(16).toUpperCase().padStart(4, '0');
  const v4 = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : isIPv4(address) ? address : undefined;
  if (v4 !== undefined && !address.startsWith('::ffff:')) {
    // One 32-bit word in host (little-endian) order.
    const hex = v4.split('.').map((b) => Number(b).toString(16).toUpperCase().padStart(2, '0')).reverse().join('');
    return { table: 'tcp', text: `${hex}:${portHex}` };
  }
  const bytes = v4 !== undefined ? [...Array(10).fill(0), 0xff, 0xff, ...v4.split('.').map(Number)] : ipv6Bytes(address);
  // Four 32-bit words, each in host (little-endian) order.
  let hex = '';
  for (let w = 0; w < 16; w += 4) hex += bytes.slice(w, w + 4).reverse().map((b) => b.toString(16).toUpperCase().padStart(2, '0')).join('');
  return { table: 'tcp6', text: `${hex}:${portHex}` };
}

function ipv6Bytes(address: string): number[] {
  if (!isIPv6(address)) throw new Error(`not an IP address: ${address}`);
  const [head = '', tail] = address.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
  return all.flatMap((g) => [g >> 8, g & 0xff]);
}

/** The uid of the row with these local and remote ends in a /proc/net/tcp{,6} text; undefined when absent. Pure. */
export function uidInTable(table: string, local: string, remote: string): number | undefined {
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:tm retrnsmt uid ...
    if (f[1] === local && f[2] === remote) return Number(f[7]);
  }
  return undefined;
}

export const isLoopbackAddress = (address: string | undefined): boolean =>
  address !== undefined && (address === '::1' || /^(::ffff:)?127\./.test(address));

/**
 * The uid owning the client end of a loopback TCP connection, seen from the
 * server's end (its local and remote address and port); undefined when not
 * loopback or not found (the client closed meanwhile).
 */
export function loopbackPeerUid(
  socket: { localAddress?: string | undefined; localPort?: number | undefined; remoteAddress?: string | undefined; remotePort?: number | undefined },
  procNet = '/proc/net',
  socketUid?: (localAddress: string, localPort: number, remoteAddress: string, remotePort: number) => number | undefined,
): number | undefined {
  const { localAddress, localPort, remoteAddress, remotePort } = socket;
  if (!isLoopbackAddress(remoteAddress) || !localAddress || !localPort || !remotePort) return undefined;
  if (socketUid) {
    // The client's socket: its local end is our remote end.
    try {
      return socketUid(remoteAddress as string, remotePort, localAddress, localPort);
    } catch {
      return undefined;
    }
  }
  // A dual-stack listener sees an IPv4 client as ::ffff:a.b.c.d; the client's
  // own socket is then usually an IPv4 one, in tcp rather than tcp6.
  const unmapped = (a: string) => (a.startsWith('::ffff:') && isIPv4(a.slice(7)) ? a.slice(7) : undefined);
  const v4 = [unmapped(remoteAddress as string), unmapped(localAddress)];
  const tries: Array<[string, string]> = [[remoteAddress as string, localAddress]];
  if (v4[0] !== undefined && v4[1] !== undefined) tries.unshift([v4[0], v4[1]]);
  for (const [client, server] of tries) {
    const clientEnd = procNetEndpoint(client, remotePort);
    const serverEnd = procNetEndpoint(server, localPort);
    try {
      const uid = uidInTable(readFileSync(path.join(procNet, clientEnd.table), 'utf8'), clientEnd.text, serverEnd.text);
      if (uid !== undefined) return uid;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The partition (a directory of instance_root) owned by `uid`; undefined when none. */
export function partitionOwnedBy(instanceRoot: string, uid: number): string | undefined {
  let names: string[];
  try {
    names = readdirSync(instanceRoot);
  } catch {
    return undefined;
  }
  for (const name of names.sort()) {
    const st = lstatSync(path.join(instanceRoot, name), { throwIfNoEntry: false });
    if (st?.isDirectory() && st.uid === uid) return name;
  }
  return undefined;
}
