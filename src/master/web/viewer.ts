// Who is looking at the web view and its API, and what they may see, from
// the master's identities (access.ts): a user sees the whole fleet, a
// computer its own computer, a partition its own partition only. Without
// client authentication (plain HTTP on loopback) anyone sees the fleet but
// no secret: parameter values stay masked.
import type { FastifyRequest } from 'fastify';
import { describe } from '../access.js';
import { identityOfRequest, type Authorize, type LocalPeers } from '../authorize.js';
import { MasterError } from '../validate.js';

export interface Viewer {
  /** Set: only this computer is visible. */
  computer?: string;
  /** Set (with computer): only this partition is visible. */
  partition?: string;
  /** May see parameter values. */
  secrets: boolean;
  who: string;
}

export type ViewerOf = (request: FastifyRequest) => Promise<Viewer>;

export function makeViewerOf(authorize: Authorize, authenticate: boolean, local: LocalPeers = {}): ViewerOf {
  return async (request) => {
    // Without TLS, a local partition user is known by its uid (docs/master.md).
    const identity = identityOfRequest(request, authenticate, local);
    switch (identity.kind) {
      case 'anyone':
        return { secrets: false, who: 'anonymous' };
      case 'nobody':
        throw new MasterError(403, `forbidden for ${describe(identity)}`);
      case 'computer':
        await authorize(request, { kind: 'computer', computer: identity.computer });
        return { computer: identity.computer, secrets: true, who: describe(identity) };
      case 'partition':
        // authorize checks the certificate is still the one issued to the partition.
        await authorize(request, { kind: 'partition-self', computer: identity.computer, partition: identity.partition });
        return { computer: identity.computer, partition: identity.partition, secrets: true, who: describe(identity) };
      default: {
        // A user, or any other identity the master grants users' rights to.
        const id = await authorize(request, { kind: 'user' });
        return { secrets: true, who: describe(id) };
      }
    }
  };
}
