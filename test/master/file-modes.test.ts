// The database holds partition private keys (issue 15): it and its -wal/-shm
// are 0600 whatever the umask, and an existing database with looser modes is
// tightened at start, with a warning.
import test from 'ava';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { tempDir } from '../helpers/master.js';

const mode = (file: string) => (statSync(file).mode & 0o7777).toString(8).padStart(4, '0');
const files = (db: string) => [db, `${db}-wal`, `${db}-shm`];

// This file is its own process (ava runs without worker threads): changing the umask affects only it.
test.serial('a new database, its WAL and SHM are 0600 under umask 000', async (t) => {
  const previous = process.umask(0o000);
  t.teardown(() => process.umask(previous));
  const db = path.join(tempDir(t), 'new', 'proxy.db');
  const warnings: string[] = [];
  const store = new SqliteStore(db, (m) => warnings.push(m));
  t.teardown(() => store.close());
  await store.transaction((tx) => tx.upsertComputer({ reference: 'COMP-1', address: null, netmask: null }));
  t.deepEqual(files(db).map(mode), ['0600', '0600', '0600'], 'while open, after a write');
  t.is(mode(path.dirname(db)), '0700', 'a directory it creates is private too');
  t.deepEqual(warnings, [], 'creating is not worth a warning');
});

test.serial('an existing database with looser modes is tightened at start, with a warning per file', async (t) => {
  const db = path.join(tempDir(t), 'proxy.db');
  const first = new SqliteStore(db, () => undefined);
  await first.transaction((tx) => tx.upsertComputer({ reference: 'COMP-1', address: null, netmask: null }));
  await first.close();
  chmodSync(db, 0o644);
  // Left over by a crash: a world-writable WAL.
  writeFileSync(`${db}-wal`, '');
  chmodSync(`${db}-wal`, 0o666);
  const warnings: string[] = [];
  const store = new SqliteStore(db, (m) => warnings.push(m));
  t.teardown(() => store.close());
  t.deepEqual(files(db).map(mode), ['0600', '0600', '0600']);
  t.is(warnings.length, 2, warnings.join('\n'));
  t.regex(warnings[0] ?? '', /proxy\.db was readable or writable by others \(mode 0644\); set to 0600/);
  t.regex(warnings[1] ?? '', /proxy\.db-wal .*mode 0666/);
  t.truthy(await store.read((tx) => tx.getComputer('COMP-1')), 'and the data is still there');
});
