// Who is at the other end of a loopback TCP connection: the kernel's socket
// table (/proc/net/tcp, tcp6) records the uid that owns each socket. A
// loopback peer is in the master's own network namespace, so its socket is in
// the master's table. Used for "root on loopback" (uploads to the network
// cache without a client certificate).
import { readFileSync } from 'node:fs';

/**
 * The uid owning the socket whose local port is `peerPort` and remote port
 * `ourPort`, from the text of /proc/net/tcp or /proc/net/tcp6 (pure).
 */
export function uidOfPeer(table: string, peerPort: number, ourPort: number): number | undefined {
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 8) continue;
    const local = fields[1]?.split(':')[1];
    const remote = fields[2]?.split(':')[1];
    if (local === undefined || remote === undefined) continue;
    if (Number.parseInt(local, 16) === peerPort && Number.parseInt(remote, 16) === ourPort) return Number(fields[7]);
  }
  return undefined;
}

export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** The uid of a loopback peer, or undefined (not loopback, or not found). */
export function loopbackPeerUid(remoteAddress: string | undefined, remotePort: number | undefined, localPort: number | undefined): number | undefined {
  if (!isLoopbackAddress(remoteAddress) || remotePort === undefined || localPort === undefined) return undefined;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let table: string;
    try {
      table = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    const uid = uidOfPeer(table, remotePort, localPort);
    if (uid !== undefined) return uid;
  }
  return undefined;
}
