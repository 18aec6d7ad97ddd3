// `slapos proxy prune-cache`: blobs no shadir entry names go once old enough;
// named ones and young ones (an upload in progress stores its blob first) stay.
import test from 'ava';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BlobStore, prunableBlobs } from '../../src/master/cache-storage.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { tempDir } from '../helpers/master.js';
import { BIN } from '../helpers/proxy-process.js';

const sha = (text: string) => createHash('sha512').update(text).digest('hex');

test('prunableBlobs: unreferenced and old enough only', (t) => {
  const now = 1e12;
  const blobs = [
    { sha512: 'a', size: 1, mtimeMs: now - 48 * 3600e3 },
    { sha512: 'b', size: 2, mtimeMs: now - 48 * 3600e3 },
    { sha512: 'c', size: 3, mtimeMs: now - 3600e3 },
  ];
  t.deepEqual(prunableBlobs(blobs, new Set(['a']), now, 24 * 3600e3).map((b) => b.sha512), ['b']);
  t.deepEqual(prunableBlobs(blobs, new Set(['a']), now, 0).map((b) => b.sha512), ['b', 'c']);
});

test('proxy prune-cache removes old unreferenced blobs, keeps named and young ones; --dry-run removes nothing', async (t) => {
  const dir = tempDir(t);
  const db = path.join(dir, 'proxy.db');
  const store = new SqliteStore(db);
  const [named, orphan, young] = [sha('named'), sha('orphan'), sha('young')];
  await store.transaction((tx) => tx.addShadir({ key: 'k', metadata: JSON.stringify({ sha512: named }), signature: '', sha512: named, created_at: 0 }));
  await store.close();
  const blobs = new BlobStore({ directory: path.join(dir, 'shacache'), quota: 1e9, maxBlob: 1e9 });
  const old = new Date(Date.now() - 48 * 3600e3);
  for (const [name, content] of [[named, 'named'], [orphan, 'orphan'], [young, 'young']] as const) {
    mkdirSync(path.dirname(blobs.blobPath(name)), { recursive: true });
    writeFileSync(blobs.blobPath(name), content);
    if (name !== young) utimesSync(blobs.blobPath(name), old, old);
  }
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, `[slapproxy]\ndatabase_uri = ${db}\n`);
  const dry = await execa('node', [BIN, 'proxy', 'prune-cache', '--cfg', cfg, '--dry-run', '--json'], { reject: false });
  t.is(dry.exitCode, 0, dry.stderr);
  t.deepEqual(JSON.parse(dry.stdout), { directory: path.join(dir, 'shacache'), kept: 2, removed: [{ sha512: orphan, size: 6 }], freedBytes: 6, dryRun: true });
  t.true(existsSync(blobs.blobPath(orphan)));
  const run = await execa('node', [BIN, 'proxy', 'prune-cache', '--cfg', cfg], { reject: false });
  t.is(run.exitCode, 0, run.stderr);
  t.regex(run.stdout, /removed 1 unreferenced blob\(s\), 6 bytes; kept 2/);
  t.false(existsSync(blobs.blobPath(orphan)));
  t.true(existsSync(blobs.blobPath(named)));
  t.true(existsSync(blobs.blobPath(young)));
  const bad = await execa('node', [BIN, 'proxy', 'prune-cache', '--cfg', cfg, '--min-age-hours', 'soon'], { reject: false });
  t.is(bad.exitCode, 1);
  t.regex(bad.stderr, /--min-age-hours: not a number of hours: soon/);
});
