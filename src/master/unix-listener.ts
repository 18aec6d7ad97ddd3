// The master on a unix socket ([slapproxy] unix_socket): plain HTTP whose
// caller the kernel names. At accept, SO_PEERCRED gives the uid of the
// process that connected; the connection's identity is then root, the
// partition that uid owns, or nobody — the same table as a loopback TCP
// caller (authorize.ts, docs/master.md), whether or not the TCP listener
// asks for client certificates. Nothing the caller sends can change it.
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { identityOfUid, rememberIdentity, type LocalPeers } from './authorize.js';
import type { Identity } from './access.js';
import { DEFAULT_TIMEOUTS } from './limits.js';

/** The descriptor of an accepted unix socket (Node's Pipe handle; there is no public accessor). */
function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/** The identity of a unix-socket caller from its peer credentials; nobody when they cannot be read. */
export function unixPeerIdentity(socket: Socket, local: LocalPeers): Identity {
  const fd = socketFd(socket);
  if (fd === undefined || !local.peerCredentials) return { kind: 'nobody', reason: 'the local caller\'s credentials could not be read' };
  try {
    return identityOfUid(local.peerCredentials(fd).uid, local);
  } catch (error) {
    return { kind: 'nobody', reason: `the local caller's credentials could not be read: ${(error as Error).message}` };
  }
}

/**
 * Serves `app` on the unix socket `file` too. A socket left by an earlier
 * run is replaced; anything else there is refused. The socket is 0666: who
 * may do what is decided per caller; its directory decides who may connect.
 */
export async function listenOnUnixSocket(app: FastifyInstance, file: string, local: LocalPeers): Promise<Server> {
  if (!local.peerCredentials) throw new Error('unix_socket: the peer credentials reader is missing');
  let existing;
  try {
    existing = lstatSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (existing && !existing.isSocket()) throw new Error(`unix_socket: ${file} exists and is not a socket (nothing was changed)`);
  if (existing) unlinkSync(file);
  // The TCP listener's limits (limits.ts): any local user can connect here.
  const t = DEFAULT_TIMEOUTS;
  const server = createServer({ headersTimeout: t.headers, requestTimeout: t.request, keepAliveTimeout: t.keepAlive, connectionsCheckingInterval: t.checkInterval },
    (request, response) => {
      app.routing(request, response);
    });
  server.timeout = t.idle;
  server.on('connection', (socket: Socket) => rememberIdentity(socket, unixPeerIdentity(socket, local)));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(file, 0o666);
  return server;
}

/** Closes the listener and its connections, and removes the socket file. */
export async function closeUnixListener(server: Server, file: string): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  try {
    if (lstatSync(file).isSocket()) unlinkSync(file);
  } catch {
    // already gone
  }
}
