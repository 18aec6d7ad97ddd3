// The network cache in the master (networkcache.md §7, §9): shacache (blobs
// by sha512) and shadir (signed entries per key), speaking the protocol of
// slapos.libnetworkcache, so that the reference's node and buildout use it
// unchanged:
//   POST /shacache            raw body → 201, body = sha512 hex
//   GET  /shacache/<sha512>   the blob (HEAD: does it exist; Range: bytes=<pos>- → 206, the rest)
//   PUT  /shacache/<sha512>   raw body, stored only if its sha512 matches
//   GET  /shadir/<key>        JSON list of [metadata_json, signature_b64]
//   PUT  /shadir/<key>        JSON [metadata_json, signature_b64] → 201 (appended)
// and the same under the reference proxy's paths (/shacache/cache[/<sha512>],
// /shacache/dir/<key>). The master stores entries as they come: signatures
// are checked by each client against its own certificates (an unsigned entry
// is kept and never used, as a real shadir).
//
// Uploads: a client certificate the master trusts (computer or user, never a
// partition: partition code is hostile), or, without client authentication
// (plain HTTP on loopback), root on loopback. Downloads: open, or with
// `authenticated` the same identities as uploads plus partitions.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Identity } from './access.js';
import { BlobStore, SHA512_HEX } from './cache-storage.js';
import { loopbackPeerUid } from './peer.js';
import type { Store } from './store.js';
import { badRequest, MasterError, notFound } from './validate.js';

export interface CacheOptions {
  blobs: BlobStore;
  /** Who may download: anyone, or only callers with an identity (see above). */
  download: 'open' | 'authenticated';
  /** The caller's identity as the rest of the API sees it ('anyone' without client authentication). */
  identify: (request: FastifyRequest) => Identity;
}

/** Largest shadir entry accepted (metadata of a release is a few hundred bytes). */
const MAX_ENTRY_BYTES = 64 * 1024;
/** Shadir keys: md5 hex, "file-urlmd5:<md5>", "pypi:<name>=<version>", … but never a path. */
const KEY = /^[\w.:=+@,~-]{1,512}$/;

function checkUpload(request: FastifyRequest, identity: Identity): void {
  // Root on loopback without TLS is already known as 'root' (authorize.ts).
  if (identity.kind === 'computer' || identity.kind === 'user' || identity.kind === 'root') return;
  const plain = !(request.raw.socket as { encrypted?: boolean }).encrypted;
  if (identity.kind === 'anyone' || (identity.kind === 'nobody' && plain)) {
    // Without TLS the kernel says who is on the other end, if on loopback.
    const uid = loopbackPeerUid(request.raw.socket);
    if (uid === 0) return;
    throw new MasterError(403, uid === undefined
      ? 'uploads to the cache need a client certificate the master trusts, or root on loopback'
      : `uploads to the cache need a client certificate the master trusts, or root on loopback (uid ${uid} is not root)`);
  }
  throw new MasterError(403, identity.kind === 'nobody' ? identity.reason : 'partitions may not upload to the cache');
}

function checkDownload(options: CacheOptions, request: FastifyRequest): void {
  if (options.download === 'open') return;
  const identity = options.identify(request);
  if (identity.kind === 'nobody') throw new MasterError(403, identity.reason);
}

async function readSmall(body: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new MasterError(413, `entry larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A shadir entry as libnetworkcache uploads it; its metadata must name a sha512. */
export function parseEntry(text: string): { metadata: string; signature: string; sha512: string } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw badRequest('the entry must be JSON: [metadata_json_string, signature_base64]');
  }
  if (!Array.isArray(body) || body.length !== 2 || typeof body[0] !== 'string' || typeof body[1] !== 'string') {
    throw badRequest('the entry must be a JSON list of two strings: [metadata_json_string, signature_base64]');
  }
  let metadata: unknown;
  try {
    metadata = JSON.parse(body[0]);
  } catch {
    throw badRequest('the entry\'s metadata is not JSON');
  }
  const sha512 = (metadata as { sha512?: unknown } | null)?.sha512;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata) || typeof sha512 !== 'string' || !SHA512_HEX.test(sha512)) {
    throw badRequest('the entry\'s metadata must be a JSON object with a "sha512" of 128 lowercase hex digits');
  }
  if (!/^[A-Za-z0-9+/=\r\n]*$/.test(body[1])) throw badRequest('the signature must be base64');
  return { metadata: body[0], signature: body[1], sha512 };
}

function declaredLength(request: FastifyRequest): number | undefined {
  const header = request.headers['content-length'];
  if (header === undefined) return undefined;
  const value = Number(header);
  return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

export async function registerCache(app: FastifyInstance, store: Store, options: CacheOptions): Promise<void> {
  const { blobs } = options;
  const getBlob = async (request: FastifyRequest<{ Params: { sha512: string } }>, reply: FastifyReply) => {
    checkDownload(options, request);
    const { sha512 } = request.params;
    const stats = blobs.stat(sha512);
    if (!stats) throw notFound(`no blob ${sha512.slice(0, 140)} in this cache`);
    reply.type('application/octet-stream').header('accept-ranges', 'bytes');
    // The rest of a blob from an offset (libnetworkcache resumes with "bytes=<pos>-"); other ranges: the whole blob.
    const from = /^bytes=(\d+)-$/.exec(String(request.headers.range ?? ''))?.[1];
    if (from !== undefined) {
      const start = Number(from);
      if (start >= stats.size) return reply.code(416).header('content-range', `bytes */${stats.size}`).send('');
      return reply.code(206).header('content-range', `bytes ${start}-${stats.size - 1}/${stats.size}`).header('content-length', stats.size - start)
        .send(createReadStream(blobs.blobPath(sha512), { start }));
    }
    return reply.header('content-length', stats.size).send(createReadStream(blobs.blobPath(sha512)));
  };
  const postBlob = async (request: FastifyRequest, reply: FastifyReply) => {
    checkUpload(request, options.identify(request));
    const { sha512 } = await blobs.put(request.body as Readable, declaredLength(request));
    return reply.code(201).type('text/plain; charset=utf-8').send(sha512);
  };
  const putBlob = async (request: FastifyRequest<{ Params: { sha512: string } }>, reply: FastifyReply) => {
    checkUpload(request, options.identify(request));
    const { sha512 } = request.params;
    if (!SHA512_HEX.test(sha512)) throw badRequest('the name of a blob is its sha512 in lowercase hex');
    await blobs.put(request.body as Readable, declaredLength(request), sha512);
    return reply.code(201).type('text/plain; charset=utf-8').send(sha512);
  };
  const getDir = async (request: FastifyRequest<{ Params: { key: string } }>, reply: FastifyReply) => {
    checkDownload(options, request);
    const { key } = request.params;
    if (!KEY.test(key)) throw notFound('no such key');
    const rows = await store.read((tx) => tx.listShadir(key));
    if (rows.length === 0) throw notFound(`no entry for ${key}`);
    return reply.type('application/json').send(JSON.stringify(rows.map((r) => [r.metadata, r.signature])));
  };
  const putDir = async (request: FastifyRequest<{ Params: { key: string } }>, reply: FastifyReply) => {
    checkUpload(request, options.identify(request));
    const { key } = request.params;
    if (!KEY.test(key)) throw badRequest('a shadir key is 1 to 512 letters, digits or ._:=+@,~-');
    const entry = parseEntry(await readSmall(request.body as Readable, MAX_ENTRY_BYTES));
    await store.transaction((tx) => tx.addShadir({ key, ...entry, created_at: Date.now() / 1000 }));
    return reply.code(201).type('text/plain; charset=utf-8').send('');
  };
  // Its own scope: bodies reach the handlers as streams (blobs are never parsed nor held in memory).
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    for (const base of ['/shacache', '/shacache/cache']) {
      scope.post(base, postBlob);
      scope.post(`${base}/`, postBlob);
      scope.get(`${base}/:sha512`, getBlob);
      scope.put(`${base}/:sha512`, putBlob);
    }
    for (const base of ['/shadir', '/shacache/dir']) {
      scope.get(`${base}/:key`, getDir);
      scope.put(`${base}/:key`, putDir);
    }
  });
}
