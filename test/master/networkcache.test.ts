// The master's network cache (shacache + shadir) over real HTTP on loopback:
// the libnetworkcache protocol and the reference proxy's paths, uploads only
// by root on loopback (or a trusted certificate), the quota, and two masters
// of one PostgreSQL database sharing one blob directory.
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { buildMaster } from '../../src/master/server.js';
import { PgStore } from '../../src/master/pg-store.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import type { Store } from '../../src/master/store.js';
import { listenOnLoopback, tempDir } from '../helpers/master.js';
import { postgresMissing, startPostgres } from '../helpers/postgres.js';
import { createUser, isRoot } from '../helpers/system.js';

const sha512 = (data: Buffer | string) => createHash('sha512').update(data).digest('hex');

async function cacheMaster(t: ExecutionContext, options: { quota?: number; maxBlob?: number; store?: Store; directory?: string } = {}) {
  const dir = options.directory ?? tempDir(t);
  const store = options.store ?? new SqliteStore(path.join(tempDir(t), 'proxy.db'));
  const app = await buildMaster({
    store, defaultComputer: 'COMP-1',
    cache: { directory: dir, quota: options.quota ?? 1024 ** 3, maxBlob: options.maxBlob ?? 1024 ** 2, download: 'open' },
  });
  t.teardown(() => app.close());
  const port = await listenOnLoopback(app);
  return { base: `http://127.0.0.1:${port}`, dir };
}

const post = (url: string, body: Buffer) => fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });

const rootTest = isRoot ? test : test.skip;

rootTest('shacache: POST stores by sha512 (201, body = sha512), GET serves it, PUT checks the name; both path styles', async (t) => {
  const { base, dir } = await cacheMaster(t);
  const blob = Buffer.from('a release tarball');
  const response = await post(`${base}/shacache`, blob);
  t.is(response.status, 201);
  t.is(await response.text(), sha512(blob));
  const got = await fetch(`${base}/shacache/${sha512(blob)}`);
  t.is(got.status, 200);
  t.deepEqual(Buffer.from(await got.arrayBuffer()), blob);
  // The reference proxy's paths reach the same store.
  t.deepEqual(Buffer.from(await (await fetch(`${base}/shacache/cache/${sha512(blob)}`)).arrayBuffer()), blob);
  t.is((await post(`${base}/shacache/cache`, Buffer.from('other'))).status, 201);
  t.is((await fetch(`${base}/shacache/${sha512('missing')}`)).status, 404);
  const wrong = await fetch(`${base}/shacache/${sha512('something else')}`, { method: 'PUT', body: blob });
  t.is(wrong.status, 400);
  t.regex(await wrong.text(), /Checksum mismatch/);
  t.is((await fetch(`${base}/shacache/${sha512(blob)}`, { method: 'PUT', body: blob })).status, 201);
  // On disk: blobs by name, no temporary file left behind.
  t.deepEqual(readdirSync(path.join(dir, 'tmp')), []);
  t.true(readdirSync(path.join(dir, 'blobs', sha512(blob).slice(0, 2))).includes(sha512(blob)));
});

rootTest('shadir: PUT appends signed entries (once each), GET lists them; bad entries are 400', async (t) => {
  const { base } = await cacheMaster(t);
  const key = '0123456789abcdef0123456789abcdef';
  t.is((await fetch(`${base}/shadir/${key}`)).status, 404);
  const entry = [JSON.stringify({ sha512: sha512('x'), software_url: 'u' }), 'c2lnbmF0dXJl'];
  const second = [JSON.stringify({ sha512: sha512('y'), software_url: 'u' }), ''];
  for (const body of [entry, entry, second]) {
    const response = await fetch(`${base}/shadir/${key}`, { method: 'PUT', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    t.is(response.status, 201);
  }
  const list = await fetch(`${base}/shadir/${key}`);
  t.regex(list.headers.get('content-type') ?? '', /^application\/json/);
  t.deepEqual(await list.json(), [entry, second]);
  t.deepEqual(await (await fetch(`${base}/shacache/dir/${key}`)).json(), [entry, second]);
  // Keys of buildout's own cache.
  t.is((await fetch(`${base}/shadir/pypi:slapos.core=1.24.0`, { method: 'PUT', body: JSON.stringify(entry) })).status, 201);
  for (const bad of ['[1]', JSON.stringify(['{}', '']), 'nope']) {
    t.is((await fetch(`${base}/shadir/${key}`, { method: 'PUT', body: bad })).status, 400, bad);
  }
  t.is((await fetch(`${base}/shadir/${key}`, { method: 'PUT', body: 'x'.repeat(70_000) })).status, 413);
});

rootTest('quota: a blob over the size limit is 413, over the remaining quota 507; nothing is kept', async (t) => {
  const { base, dir } = await cacheMaster(t, { quota: 1000, maxBlob: 600 });
  t.is((await post(`${base}/shacache`, Buffer.alloc(700, 1))).status, 413);
  t.is((await post(`${base}/shacache`, Buffer.alloc(500, 2))).status, 201);
  const full = await post(`${base}/shacache`, Buffer.alloc(550, 3));
  t.is(full.status, 507);
  t.regex(await full.text(), /cache full/);
  t.is((await fetch(`${base}/shacache/${sha512(Buffer.alloc(550, 3))}`)).status, 404);
  t.deepEqual(readdirSync(path.join(dir, 'tmp')), []);
});

rootTest('uploads without a client certificate: root on loopback only; downloads stay open', async (t) => {
  const { base } = await cacheMaster(t);
  const user = createUser(t);
  const blob = Buffer.from('public');
  t.is((await post(`${base}/shacache`, blob)).status, 201);
  // Asynchronous: the master answers from this very process.
  const script = (code: string) => new Promise<{ stdout: string; stderr: string }>((resolve) => {
    execFile('setpriv', ['--reuid', String(user.uid), '--regid', String(user.gid), '--clear-groups', process.execPath, '--input-type=module', '-e', code],
      { encoding: 'utf8', timeout: 30_000 }, (_error, stdout, stderr) => resolve({ stdout, stderr }));
  });
  const upload = await script(`const r = await fetch(${JSON.stringify(`${base}/shacache`)}, { method: 'POST', body: 'x' }); console.log(r.status, await r.text());`);
  t.regex(upload.stdout, /^403 .*root on loopback \(uid \d+ is not root\)/, upload.stderr);
  const entry = await script(`const r = await fetch(${JSON.stringify(`${base}/shadir/k`)}, { method: 'PUT', body: '[]' }); console.log(r.status);`);
  t.is(entry.stdout.trim(), '403');
  const download = await script(`const r = await fetch(${JSON.stringify(`${base}/shacache/${sha512(blob)}`)}); console.log(r.status, await r.text());`);
  t.is(download.stdout.trim(), '200 public');
});

const missing = postgresMissing();
(missing || !isRoot ? test.skip : test)(`pg: two masters of one database share the blob directory and the entries${missing ? ` [skipped: ${missing}]` : ''}`, async (t) => {
  const server = await startPostgres();
  t.teardown(() => server.stop());
  const uri = await server.createDatabase(`cache${process.pid}`);
  const dir = tempDir(t);
  chmodSync(dir, 0o700);
  const a = await cacheMaster(t, { store: await PgStore.open(uri), directory: dir });
  const b = await cacheMaster(t, { store: await PgStore.open(uri), directory: dir });
  const blob = Buffer.from('shared');
  t.is(await (await post(`${a.base}/shacache`, blob)).text(), sha512(blob));
  t.is(await (await fetch(`${b.base}/shacache/${sha512(blob)}`)).text(), 'shared');
  const entry = [JSON.stringify({ sha512: sha512(blob) }), ''];
  t.is((await fetch(`${a.base}/shadir/key1`, { method: 'PUT', body: JSON.stringify(entry) })).status, 201);
  t.is((await fetch(`${b.base}/shadir/key1`, { method: 'PUT', body: JSON.stringify(entry) })).status, 201);
  t.deepEqual(await (await fetch(`${b.base}/shadir/key1`)).json(), [entry]);
  // Both store the same blob at once: one file, both answers right.
  const big = Buffer.alloc(200_000, 7);
  const answers = await Promise.all([post(`${a.base}/shacache`, big), post(`${b.base}/shacache`, big)]);
  t.deepEqual(await Promise.all(answers.map((r) => r.text())), [sha512(big), sha512(big)]);
  t.deepEqual(readdirSync(path.join(dir, 'tmp')), []);
});
