// Request identity (from the TLS peer certificate) and the 403 check each
// route runs before touching data. A partition certificate is honoured only
// while it is the one the master issued for that partition (freeing the
// partition revokes it).
import type { FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import { allows, describe, identityOf, type Identity, type Rule } from './access.js';
import { loopbackPeerUid, partitionOwnedBy } from './peer.js';
import type { Store } from './store.js';
import { MasterError } from './validate.js';

const cache = new WeakMap<object, Identity>();

/**
 * Without client certificates, who may call: the kernel-known owner of a
 * loopback peer (docs/master.md). `instanceRoot` and `computer` map a local
 * uid to the partition it owns; without them only root is known.
 */
export interface LocalPeers {
  instanceRoot?: string | undefined;
  computer?: string | undefined;
  /**
   * SO_PEERCRED of a connected unix socket, for the unix-socket listener
   * (unix-listener.ts); given by the caller (the native addon is below the
   * master's layer).
   */
  peerCredentials?: ((fd: number) => { uid: number }) | undefined;
  /**
   * The uid owning a TCP socket (local end, remote end), from the kernel's
   * socket diagnostics (native addon): one lookup instead of reading the
   * whole /proc/net/tcp{,6} table per new loopback connection. Without it,
   * the table is read (peer.ts).
   */
  tcpSocketUid?: ((localAddress: string, localPort: number, remoteAddress: string, remotePort: number) => number | undefined) | undefined;
}

/** Root, the partition a uid owns, or nobody: one table for loopback TCP and unix-socket callers. */
export function identityOfUid(uid: number, local: LocalPeers): Identity {
  if (uid === 0) return { kind: 'root' };
  const partition = local.instanceRoot && local.computer ? partitionOwnedBy(local.instanceRoot, uid) : undefined;
  if (partition && local.computer) return { kind: 'partition', computer: local.computer, partition, fingerprint: null };
  return { kind: 'nobody', reason: `local uid ${uid} is neither root nor a partition's user` };
}

/** The identity of a connection known before its first request (the unix listener's peer credentials). */
export function rememberIdentity(socket: object, identity: Identity): void {
  cache.set(socket, identity);
}

/** The identity of a plain-HTTP caller from its loopback socket's uid; anyone off loopback (allow_insecure_bind). */
export function localIdentity(socket: Parameters<typeof loopbackPeerUid>[0], local: LocalPeers, procNet?: string): Identity {
  if (!socket.remoteAddress || !/^(::1|(::ffff:)?127\.)/.test(socket.remoteAddress)) return { kind: 'anyone' };
  const uid = loopbackPeerUid(socket, procNet, local.tcpSocketUid);
  if (uid === undefined) return { kind: 'nobody', reason: 'the local caller\'s uid could not be read' };
  return identityOfUid(uid, local);
}

/** The caller's identity; `authenticate` false means no client authentication is configured (then the kernel's, on loopback). */
export function identityOfRequest(request: FastifyRequest, authenticate: boolean, local: LocalPeers = {}): Identity {
  const socket = request.raw.socket as TLSSocket;
  const known = cache.get(socket);
  if (known) return known;
  if (!authenticate) {
    const identity = localIdentity(socket, local);
    cache.set(socket, identity);
    return identity;
  }
  const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
  const present = peer !== undefined && Object.keys(peer).length > 0;
  // Without a certificate Node still reports an authorization error: the useful message is "none given".
  const error = present && socket.authorizationError ? String(socket.authorizationError) : undefined;
  const identity = identityOf(present ? peer.subject : undefined, socket.authorized === true, present ? peer.fingerprint256 : '', error);
  cache.set(socket, identity);
  return identity;
}

export type Authorize = (request: FastifyRequest, rule: Rule) => Promise<Identity>;

export function makeAuthorizer(store: Store, authenticate: boolean, local: LocalPeers = {}): Authorize {
  return async (request, rule) => {
    const identity = identityOfRequest(request, authenticate, local);
    if (!allows(identity, rule)) throw new MasterError(403, `forbidden for ${describe(identity)}`);
    if (identity.kind === 'partition' && identity.fingerprint !== null) {
      const issued = await store.read((tx) => tx.getCertificate(identity.computer, identity.partition));
      if (!issued || issued.fingerprint !== identity.fingerprint) {
        throw new MasterError(403, `forbidden: the certificate of ${describe(identity)} is not (or no longer) the one issued to it`);
      }
    }
    return identity;
  };
}
