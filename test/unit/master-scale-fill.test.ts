// The master-scale benchmark's bulk fill (bench/master-scale-fill.ts) leaves
// exactly the rows the store path leaves (loadComputer, upsertSoftware,
// updatePartition): same tables, columns, values and order; only the
// allocation timestamps (the clock at write time) differ.
import test from 'ava';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bulkFill, populate } from '../../bench/master-scale-fill.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';

const TABLES = ['computer', 'computer_partition', 'partition_network', 'software', 'shared_instance', 'usage_report', 'partition_certificate'];

function dump(file: string): Record<string, unknown[]> {
  const db = new Database(file, { readonly: true });
  try {
    return Object.fromEntries(TABLES.map((table) => [table, db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all().map((row) => {
      const r = row as Record<string, unknown>;
      // The clock at write time: present where allocated, not compared.
      if ('timestamp' in r) r.timestamp = r.timestamp === null ? null : 'set';
      return r;
    })]));
  } finally {
    db.close();
  }
}

test('bulkFill writes the rows populate() writes through the store', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'slapos-scale-fill-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fleet = { partitions: 4, busy: 0.5 };

  const viaStore = path.join(dir, 'store.db');
  const store = new SqliteStore(viaStore);
  await populate(store, 0, 3, fleet);
  await populate(store, 3, 7, fleet);
  await store.close();

  const viaBulk = path.join(dir, 'bulk.db');
  await new SqliteStore(viaBulk).close(); // migrations only
  const db = new Database(viaBulk);
  const done: number[] = [];
  // 3 computers per transaction: the chunk boundaries differ from populate()'s.
  await bulkFill(async (sql, params) => { db.prepare(sql).run(...params); }, 0, 7, fleet, { perTransaction: 3, progress: (n) => done.push(n) });
  db.close();

  const expected = dump(viaStore);
  t.is(expected.computer!.length, 7);
  t.is(expected.computer_partition!.length, 28);
  t.is(expected.partition_network!.length, 56);
  t.deepEqual(dump(viaBulk), expected);
  t.deepEqual(done, [3, 6, 7]);
});

test('bulkFill rolls back a failing transaction and stops', async (t) => {
  const statements: string[] = [];
  const exec = async (sql: string) => {
    statements.push(sql.split(' ')[0]!);
    if (sql.startsWith('INSERT INTO partition_network')) throw new Error('disk full');
  };
  await t.throwsAsync(bulkFill(exec, 0, 10, { partitions: 2, busy: 0.5 }, { perTransaction: 5 }), { message: 'disk full' });
  t.deepEqual(statements, ['BEGIN', 'INSERT', 'INSERT', 'INSERT', 'ROLLBACK']);
});
