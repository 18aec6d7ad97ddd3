// Request identity (from the TLS peer certificate) and the 403 check each
// route runs before touching data. A partition certificate is honoured only
// while it is the one the master issued for that partition (freeing the
// partition revokes it).
import type { FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import { allows, describe, identityOf, type Identity, type Rule } from './access.js';
import type { Store } from './store.js';
import { MasterError } from './validate.js';

const cache = new WeakMap<object, Identity>();

/** The caller's identity; `authenticate` false means no client authentication is configured. */
export function identityOfRequest(request: FastifyRequest, authenticate: boolean): Identity {
  if (!authenticate) return { kind: 'anyone' };
  const socket = request.raw.socket as TLSSocket;
  const known = cache.get(socket);
  if (known) return known;
  const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
  const present = peer !== undefined && Object.keys(peer).length > 0;
  // Without a certificate Node still reports an authorization error: the useful message is "none given".
  const error = present && socket.authorizationError ? String(socket.authorizationError) : undefined;
  const identity = identityOf(present ? peer.subject : undefined, socket.authorized === true, present ? peer.fingerprint256 : '', error);
  cache.set(socket, identity);
  return identity;
}

export type Authorize = (request: FastifyRequest, rule: Rule) => Promise<Identity>;

export function makeAuthorizer(store: Store, authenticate: boolean): Authorize {
  return async (request, rule) => {
    const identity = identityOfRequest(request, authenticate);
    if (!allows(identity, rule)) throw new MasterError(403, `forbidden for ${describe(identity)}`);
    if (identity.kind === 'partition') {
      const issued = await store.read((tx) => tx.getCertificate(identity.computer, identity.partition));
      if (!issued || issued.fingerprint !== identity.fingerprint) {
        throw new MasterError(403, `forbidden: the certificate of ${describe(identity)} is not (or no longer) the one issued to it`);
      }
    }
    return identity;
  };
}
