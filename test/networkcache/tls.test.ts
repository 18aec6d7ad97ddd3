// The cache over TLS with client certificates (the master's own CA): a
// computer or user certificate uploads, a stranger does not; with
// shacache_download = authenticated, downloads need a certificate too. The
// node's cache client (client.ts) with the shacache-*/shadir-* files.
import test from 'ava';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { CacheHttpError, listEntries, putEntry, uploadBlob } from '../../src/networkcache/client.js';
import { listenOnLoopback, tempDir } from '../helpers/master.js';
import { BIN } from '../helpers/proxy-process.js';

test('uploads need a trusted computer or user certificate; authenticated downloads need one too', async (t) => {
  const dir = tempDir(t);
  const ssl = path.join(dir, 'ssl');
  const init = await execa('node', [BIN, 'proxy', 'init-ca', '--dir', ssl, '--computer', 'COMP-1', '--user', 'admin'], { reject: false });
  t.is(init.exitCode, 0, init.stderr);
  const file = (name: string) => path.join(ssl, name);
  const app = await buildMaster({
    store: new SqliteStore(path.join(dir, 'proxy.db')), defaultComputer: 'COMP-1',
    https: { key: readFileSync(file('server.key')), cert: readFileSync(file('server.crt')), ca: readFileSync(file('ca.crt')) },
    cache: { directory: path.join(dir, 'cache'), quota: 1e9, maxBlob: 1e6, download: 'authenticated' },
  });
  t.teardown(() => app.close());
  const base = `https://localhost:${await listenOnLoopback(app)}`;
  const blobFile = path.join(dir, 'blob');
  writeFileSync(blobFile, 'tarball');
  const sha = createHash('sha512').update('tarball').digest('hex');
  const computer = { ca: file('ca.crt'), cert: file('computer-COMP-1.crt'), key: file('computer-COMP-1.key') };
  const user = { ca: file('ca.crt'), cert: file('user-admin.crt'), key: file('user-admin.key') };
  const stranger = { ca: file('ca.crt') };

  await uploadBlob(`${base}/shacache`, blobFile, 7, sha, computer);
  const entry = { metadata: JSON.stringify({ sha512: sha }), signature: '' };
  await putEntry(`${base}/shadir`, 'key1', entry, user);
  const refused = await t.throwsAsync(uploadBlob(`${base}/shacache`, blobFile, 7, sha, stranger), { instanceOf: CacheHttpError });
  t.is(refused?.status, 403);
  await t.throwsAsync(putEntry(`${base}/shadir`, 'key1', entry, stranger), { instanceOf: CacheHttpError, message: /HTTP 403/ });
  t.deepEqual(await listEntries(`${base}/shadir`, 'key1', computer), [entry]);
  await t.throwsAsync(listEntries(`${base}/shadir`, 'key1', stranger), { instanceOf: CacheHttpError, message: /HTTP 403/ });
});
