// A cut blob download is resumed with Range (as libnetworkcache): against a
// stand-in cache of the test (its own HTTP server, not a real shacache) that
// cuts the first answer half-way, and our master serving `Range: bytes=<pos>-`.
import test, { type ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { downloadBlob, uploadBlob } from '../../src/networkcache/client.js';
import { request } from '../../src/vendor/undici.js';
import { listenOnLoopback } from '../helpers/master.js';
import { isRoot, tempDir } from '../helpers/system.js';

const blob = randomBytes(256 * 1024);
const sha512 = createHash('sha512').update(blob).digest('hex');

/** The first GET: headers for the whole blob, half of it, then the connection is cut. Later GETs: `resume`. */
async function cuttingCache(t: ExecutionContext, resume: (headers: IncomingHttpHeaders) => { status: number; headers: Record<string, string | number>; body: Buffer }, ranges = true): Promise<{ base: string; seen: IncomingHttpHeaders[] }> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    if (seen.length === 1) {
      res.writeHead(200, { 'content-length': blob.length, ...(ranges ? { 'accept-ranges': 'bytes' } : {}) });
      res.write(blob.subarray(0, blob.length / 2), () => setTimeout(() => res.destroy(), 50));
      return;
    }
    const answer = resume(req.headers);
    res.writeHead(answer.status, answer.headers).end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  return { base: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/shacache`, seen };
}

test('a download cut half-way is resumed from where it stopped, and the whole is checked', async (t) => {
  const { base, seen } = await cuttingCache(t, (headers) => {
    const start = Number(/^bytes=(\d+)-$/.exec(String(headers.range))?.[1] ?? 0);
    return { status: 206, headers: { 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}`, 'content-length': blob.length - start }, body: blob.subarray(start) };
  });
  const file = path.join(tempDir(t), 'blob');
  t.is(await downloadBlob(base, sha512, file, 1e9), blob.length);
  t.true(readFileSync(file).equals(blob));
  t.is(seen.length, 2);
  // From what arrived before the cut (half the blob, or less when the cut lost some of it).
  const from = Number(/^bytes=(\d+)-$/.exec(String(seen[1]?.range))?.[1]);
  t.true(from > 0 && from <= blob.length / 2, String(seen[1]?.range));
});

test('a resumption answered with the whole blob (range ignored) or with other bytes fails', async (t) => {
  const whole = await cuttingCache(t, () => ({ status: 200, headers: { 'content-length': blob.length }, body: blob }));
  await t.throwsAsync(downloadBlob(whole.base, sha512, path.join(tempDir(t), 'blob'), 1e9), { message: /cut after \d+ bytes.*HTTP 200, not the rest/ });
  const other = await cuttingCache(t, (headers) => {
    const start = Number(/^bytes=(\d+)-$/.exec(String(headers.range))?.[1] ?? 0);
    return { status: 206, headers: { 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}` }, body: randomBytes(blob.length - start) };
  });
  await t.throwsAsync(downloadBlob(other.base, sha512, path.join(tempDir(t), 'blob'), 1e9), { message: /sha512 mismatch/ });
});

test('a download cut while the node is still writing (backpressure), from a server without ranges, is an error, not a crash', async (t) => {
  const { base, seen } = await cuttingCache(t, () => ({ status: 500, headers: {}, body: Buffer.alloc(0) }), false);
  await t.throwsAsync(downloadBlob(base, sha512, path.join(tempDir(t), 'blob'), 1e9), { message: /closed after \d+ of 262144 bytes|aborted|ECONNRESET/ });
  t.is(seen.length, 1, 'not resumed');
});

(isRoot ? test : test.skip)('our master answers Range: bytes=<pos>- with the rest (206), beyond the end 416', async (t) => {
  const dir = tempDir(t);
  const app = await buildMaster({
    store: new SqliteStore(path.join(dir, 'proxy.db')), defaultComputer: 'COMP-1',
    cache: { directory: path.join(dir, 'cache'), quota: 1e9, maxBlob: 1e8, download: 'open' },
  });
  t.teardown(() => app.close());
  const base = `http://127.0.0.1:${await listenOnLoopback(app)}/shacache`;
  const file = path.join(dir, 'upload');
  writeFileSync(file, blob);
  await uploadBlob(base, file, blob.length, sha512); // root on loopback
  const whole = await request(`${base}/${sha512}`);
  t.is(whole.statusCode, 200);
  t.is(whole.headers['accept-ranges'], 'bytes');
  await whole.body.dump();
  const rest = await request(`${base}/${sha512}`, { headers: { range: 'bytes=1000-' } });
  t.is(rest.statusCode, 206);
  t.is(rest.headers['content-range'], `bytes 1000-${blob.length - 1}/${blob.length}`);
  t.true(Buffer.from(await rest.body.arrayBuffer()).equals(blob.subarray(1000)));
  const beyond = await request(`${base}/${sha512}`, { headers: { range: `bytes=${blob.length}-` } });
  t.is(beyond.statusCode, 416);
  await beyond.body.dump();
});
