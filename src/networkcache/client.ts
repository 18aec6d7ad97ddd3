// The HTTP side of slapos.libnetworkcache (networkcache.md §7): list a shadir
// key, stream a blob to a file while hashing it, upload a blob and an entry.
// `Connection: close` as the library; Basic auth from user:password@ in the
// URL; client certificate and CA for HTTPS uploads from the shacache-*/shadir-*
// files, the CA for downloads. Downloads (answers of any size from a cache
// that may be hostile) use node:http(s), uploads undici (see get()).
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { request as httpGet, type IncomingMessage } from 'node:http';
import { request as httpsGet } from 'node:https';
import { Agent, request, type Dispatcher } from '../vendor/undici.js';
import { joinUrl } from './settings.js';
import type { RawEntry } from './select.js';

export class CacheHttpError extends Error {
  constructor(readonly url: string, readonly status: number, detail: string) {
    super(`${redact(url)}: HTTP ${status}${detail ? `: ${detail}` : ''}`);
    this.name = 'CacheHttpError';
  }
}

/** A URL without its password, for messages. */
export const redact = (url: string): string => url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');

export interface Tls {
  ca?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
}

const GET_TIMEOUT_MS = 60_000;
const UPLOAD_TIMEOUT_MS = 3600_000;
/** A shadir list is small text; a larger answer is refused, never buffered. */
const MAX_LIST_BYTES = 16 * 1024 * 1024;

function target(url: string): { url: string; headers: Record<string, string> } {
  const parsed = new URL(url);
  const headers: Record<string, string> = { connection: 'close' };
  if (parsed.username || parsed.password) {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')}`;
    parsed.username = '';
    parsed.password = '';
  }
  return { url: parsed.toString(), headers };
}

function dispatcher(tls: Tls | undefined, timeout: number): Dispatcher {
  const read = (file: string | undefined) => (file ? readFileSync(file) : undefined);
  return new Agent({
    headersTimeout: timeout, bodyTimeout: timeout,
    connect: { ...(tls?.ca ? { ca: read(tls.ca) } : {}), ...(tls?.cert ? { cert: read(tls.cert) } : {}), ...(tls?.key ? { key: read(tls.key) } : {}) },
  });
}

async function drain(body: Dispatcher.ResponseData['body'], limit = 4096): Promise<string> {
  let text = '';
  for await (const chunk of body as AsyncIterable<Buffer>) if (text.length < limit) text += chunk.toString('utf8');
  return text.slice(0, limit).trim();
}

/** GET <dir>/<key>: the list of [metadata, signature]; undefined for 404. */
export async function listEntries(dirUrl: string, key: string, tls?: Tls): Promise<RawEntry[] | undefined> {
  const { url, headers } = target(joinUrl(dirUrl, key));
  const response = await get(url, headers, tls);
  try {
    const status = response.statusCode ?? 0;
    if (status === 404) {
      await drainMessage(response);
      return undefined;
    }
    if (status < 200 || status >= 300) throw new CacheHttpError(url, status, await drainMessage(response));
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const chunk of response as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_LIST_BYTES) throw new Error(`${redact(url)}: shadir answer larger than ${MAX_LIST_BYTES} bytes`);
      chunks.push(chunk);
    }
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (!Array.isArray(parsed)) throw new Error(`${redact(url)}: shadir answer is not a JSON list`);
    return parsed.flatMap((item): RawEntry[] =>
      Array.isArray(item) && typeof item[0] === 'string' && typeof item[1] === 'string' ? [{ metadata: item[0], signature: item[1] }] : []);
  } finally {
    response.destroy();
  }
}

export class ChecksumError extends Error {
  override name = 'ChecksumError';
}

/**
 * One GET with node:http(s), for blob bodies. Not undici: undici 7 (the last
 * line for Node 20) throws an uncatchable assertion when a server closes the
 * connection while the body is paused by backpressure (nodejs/undici#5360,
 * fixed in undici 8, Node 22), so a cache could crash the node; node:http
 * reports that as an error of the body instead.
 */
function get(url: string, headers: Record<string, string>, tls: Tls | undefined): Promise<IncomingMessage> {
  const parsed = new URL(url);
  const read = (file: string) => readFileSync(file);
  const https = parsed.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const request = (https ? httpsGet : httpGet)(parsed, {
      method: 'GET', headers, agent: false, timeout: GET_TIMEOUT_MS,
      ...(https ? { ...(tls?.ca ? { ca: read(tls.ca) } : {}), ...(tls?.cert ? { cert: read(tls.cert) } : {}), ...(tls?.key ? { key: read(tls.key) } : {}) } : {}),
    }, resolve);
    request.on('timeout', () => request.destroy(new Error(`${redact(url)}: nothing received for ${GET_TIMEOUT_MS / 1000} s`)));
    request.on('error', reject);
    request.end();
  });
}

async function drainMessage(body: IncomingMessage, limit = 4096): Promise<string> {
  let text = '';
  for await (const chunk of body as AsyncIterable<Buffer>) if (text.length < limit) text += chunk.toString('utf8');
  return text.slice(0, limit).trim();
}

/** Resumptions of one blob after a cut connection. */
const MAX_RESUMES = 3;

class TooLarge extends Error {
  override name = 'TooLarge';
}

const rangeStart = (header: string | string[] | undefined): number | undefined => {
  const m = /^bytes (\d+)-\d+\/\d+$/.exec(String(header ?? ''));
  return m ? Number(m[1]) : undefined;
};

/**
 * GET <cache>/<sha512> into `file` (created, mode 0644), hashing while it
 * streams: a different sha512, a body longer than `maxBytes` or shorter than
 * its Content-Length is an error (the caller removes the file). A cut
 * connection is resumed with `Range: bytes=<received>-` (up to 3 times) when
 * the first answer had a Content-Length and `Accept-Ranges: bytes`, as
 * libnetworkcache does; the resumed answer must be a 206 from that offset.
 */
export async function downloadBlob(cacheUrl: string, sha512: string, file: string, maxBytes: number, tls?: Tls): Promise<number> {
  const { url, headers } = target(joinUrl(cacheUrl, sha512));
  const out = await open(file, 'wx', 0o644);
  try {
    const hash = createHash('sha512');
    let size = 0;
    /** The whole length, known when the server takes ranges. */
    let total: number | undefined;
    for (let attempt = 0; ; attempt++) {
      let response: IncomingMessage;
      try {
        response = await get(url, attempt === 0 ? headers : { ...headers, range: `bytes=${size}-` }, tls);
      } catch (error) {
        if (attempt === 0 || attempt >= MAX_RESUMES) throw error;
        continue;
      }
      const status = response.statusCode ?? 0;
      let expected: number | undefined;
      if (attempt === 0) {
        if (status < 200 || status >= 300) throw new CacheHttpError(url, status, await drainMessage(response));
        const length = Number(response.headers['content-length']);
        if (Number.isSafeInteger(length)) expected = length;
        if (response.headers['accept-ranges'] === 'bytes' && expected !== undefined) total = expected;
      } else if (status !== 206 || rangeStart(response.headers['content-range']) !== size) {
        response.destroy();
        throw new Error(`${redact(url)}: cut after ${size} bytes, and the resumption was answered HTTP ${status}, not the rest`);
      } else {
        expected = total;
      }
      try {
        for await (const chunk of response as AsyncIterable<Buffer>) {
          size += chunk.length;
          if (size > maxBytes) throw new TooLarge(`${redact(url)}: blob larger than ${maxBytes} bytes; refused`);
          hash.update(chunk);
          await out.write(chunk);
        }
        if (expected !== undefined && size < expected) throw new Error(`${redact(url)}: connection closed after ${size} of ${expected} bytes`);
      } catch (error) {
        response.destroy();
        if (error instanceof TooLarge || total === undefined || size >= total || attempt >= MAX_RESUMES) throw error;
        continue;
      }
      break;
    }
    const got = hash.digest('hex');
    if (got !== sha512) throw new ChecksumError(`${redact(url)}: sha512 mismatch after ${size} bytes (got ${got.slice(0, 16)}…): truncated or altered`);
    await out.sync();
    return size;
  } finally {
    await out.close();
  }
}

/** Whether <cache>/<sha512> exists (a 2xx GET, as the library; the body is not read). */
export async function blobExists(cacheUrl: string, sha512: string, tls?: Tls): Promise<boolean> {
  const { url, headers } = target(joinUrl(cacheUrl, sha512));
  const agent = dispatcher(tls, GET_TIMEOUT_MS);
  try {
    const response = await request(url, { method: 'GET', headers, dispatcher: agent });
    await response.body.dump();
    return response.statusCode >= 200 && response.statusCode < 300;
  } catch {
    return false;
  } finally {
    await agent.close();
  }
}

/** POST <cache> with the file's bytes: 201 and the sha512 as body, as libnetworkcache expects. */
export async function uploadBlob(cacheUrl: string, file: string, size: number, sha512: string, tls?: Tls): Promise<void> {
  const { url, headers } = target(cacheUrl.replace(/\/+$/, ''));
  const agent = dispatcher(tls, UPLOAD_TIMEOUT_MS);
  try {
    const response = await request(url, {
      method: 'POST', dispatcher: agent, body: createReadStream(file),
      headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(size) },
    });
    const text = await drain(response.body);
    if (response.statusCode !== 201) throw new CacheHttpError(url, response.statusCode, text);
    if (text !== sha512) throw new Error(`${redact(url)}: the cache stored the upload as ${text.slice(0, 140)}, not ${sha512}`);
  } finally {
    await agent.close();
  }
}

/** PUT <dir>/<key> with [metadata, signature]: 201. */
export async function putEntry(dirUrl: string, key: string, entry: RawEntry, tls?: Tls): Promise<void> {
  const { url, headers } = target(joinUrl(dirUrl, key));
  const agent = dispatcher(tls, UPLOAD_TIMEOUT_MS);
  try {
    const response = await request(url, {
      method: 'PUT', dispatcher: agent, body: JSON.stringify([entry.metadata, entry.signature]),
      headers: { ...headers, 'content-type': 'application/json' },
    });
    const text = await drain(response.body);
    if (response.statusCode !== 201) throw new CacheHttpError(url, response.statusCode, text);
  } finally {
    await agent.close();
  }
}
