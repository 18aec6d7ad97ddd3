// Registering a computer with a one-time token, as the real master does for
// `slapos node register` (slapos.core slapos/cli/register.py): a user asks a
// token (POST /computer-token, `slapos computer token`); the node trades it
// once for the computer and its certificate and key (POST
// /Person_requestComputer, form `title`, header X-Access-Token). Only the
// token's SHA-256 is stored; it expires after TOKEN_LIFETIME.
import type { FastifyInstance } from 'fastify';
import { createHash, randomBytes } from 'node:crypto';
import type { Authorize } from './authorize.js';
import { describe } from './access.js';
import { issueCertificate, type CaFiles, type IssuedCertificate } from './certificates.js';
import type { Store } from './store.js';
import { MasterError } from './validate.js';

export const TOKEN_LIFETIME_S = 24 * 3600;
/** A computer reference a node may ask for: what slapos.cfg's computer_id and our certificate CN can carry. */
export const COMPUTER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const digestOf = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

export interface TokenOptions {
  /** Without a CA the master cannot hand out certificates: both routes answer 501. */
  ca: CaFiles | undefined;
  now?: () => number;
  issue?: (ca: CaFiles, name: string) => Promise<IssuedCertificate>;
}

export function registerComputerToken(app: FastifyInstance, store: Store, authorize: Authorize, options: TokenOptions): void {
  const now = options.now ?? (() => Date.now() / 1000);
  const issue = options.issue ?? ((ca, name) => issueCertificate(ca, 'computer', name));
  const noCa = 'this master has no CA to issue computer certificates (set ca_file and ca_key_file, see `slapos proxy init-ca`)';

  app.post('/computer-token', async (request, reply) => {
    const identity = await authorize(request, { kind: 'user' });
    if (!options.ca) return reply.code(501).type('text/plain; charset=utf-8').send(noCa);
    const token = randomBytes(24).toString('base64url');
    const at = now();
    await store.transaction((tx) => tx.putComputerToken(digestOf(token), describe(identity), at, at + TOKEN_LIFETIME_S));
    return reply.send({ token, expires_at: new Date((at + TOKEN_LIFETIME_S) * 1000).toISOString() });
  });

  app.post('/Person_requestComputer', async (request, reply) => {
    const header = request.headers['x-access-token'];
    const token = typeof header === 'string' ? header.trim() : '';
    const body = (request.body ?? {}) as Record<string, unknown>;
    const title = typeof body.title === 'string' ? body.title : '';
    if (!token) throw new MasterError(403, 'an X-Access-Token header is required');
    if (!COMPUTER_NAME.test(title)) throw new MasterError(400, `title must match ${COMPUTER_NAME.source}, not ${JSON.stringify(title)}`);
    if (!options.ca) return reply.code(501).type('text/plain; charset=utf-8').send(noCa);
    // Issued first, outside the transaction: a failure then changes nothing (the token stays usable).
    const issued = await issue(options.ca, title);
    await store.transaction(async (tx) => {
      if (await tx.getComputer(title)) throw new MasterError(409, `Certificate still active. The computer ${title} is already registered.`);
      if (!(await tx.takeComputerToken(digestOf(token), now()))) throw new MasterError(403, 'unknown, used or expired token');
      await tx.upsertComputer({ reference: title, address: null, netmask: null });
    });
    request.log.info({ computer: title }, 'computer registered with a token');
    return reply.send({ certificate: issued.certificate, key: issued.key, reference: title, relative_url: `computer_module/${title}` });
  });
}
