// The usage store's migrations: a database of the layout the store had before
// it was versioned (user_version 0) is adopted without loss; a newer one is refused.
import test from 'ava';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { USAGE_SCHEMA_VERSION, UsageStore } from '../../src/accounting/store.js';

// The unversioned layout, as src/accounting/store.ts created it before migrations (commit afe8622).
const PREVIOUS_LAYOUT = `
CREATE TABLE IF NOT EXISTS sample (
  id INTEGER PRIMARY KEY, partition TEXT NOT NULL, at INTEGER NOT NULL,
  cpu_usec INTEGER, memory_bytes INTEGER, memory_peak_bytes INTEGER, io_read_bytes INTEGER, io_write_bytes INTEGER,
  pids INTEGER, net_rx_bytes INTEGER, net_tx_bytes INTEGER, net_rx_packets INTEGER, net_tx_packets INTEGER,
  disk_bytes INTEGER, reported INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS sample_pending ON sample (reported, at);
CREATE INDEX IF NOT EXISTS sample_partition ON sample (partition, at);
CREATE TABLE IF NOT EXISTS disk (
  partition TEXT PRIMARY KEY, bytes INTEGER NOT NULL, at INTEGER NOT NULL, partial INTEGER NOT NULL, method TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
  id INTEGER PRIMARY KEY, kind TEXT NOT NULL, period_start INTEGER, document TEXT NOT NULL,
  created_at INTEGER NOT NULL, sent_at INTEGER, rejected TEXT);
CREATE UNIQUE INDEX IF NOT EXISTS outbox_period ON outbox (period_start) WHERE kind = 'period';
CREATE TABLE IF NOT EXISTS ingested (
  path TEXT NOT NULL, sha256 TEXT NOT NULL, outbox_id INTEGER NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (path, sha256));
`;

function scratch(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'usage-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'accounting', 'usage.sqlite');
}

test('a database of the previous, unversioned layout is adopted with its rows', (t) => {
  const file = scratch(t);
  // Written as the previous version did: its layout, rows in every table, user_version 0.
  const old = (() => {
    const store = new UsageStore(file); // makes the directory; then the file is replaced by an old one
    store.close();
    rmSync(file);
    return new Database(file);
  })();
  old.pragma('journal_mode = WAL');
  old.exec(PREVIOUS_LAYOUT);
  old.prepare("INSERT INTO sample (partition, at, cpu_usec, reported) VALUES ('slappart0', 100, 5000, 0)").run();
  old.prepare("INSERT INTO disk VALUES ('slappart0', 4096, 100, 0, 'du')").run();
  old.prepare("INSERT INTO outbox (kind, period_start, document, created_at) VALUES ('period', 0, '<journal/>', 100)").run();
  old.prepare("INSERT INTO ingested VALUES ('/srv/x.xml', 'abc', 1, 100)").run();
  t.is(old.pragma('user_version', { simple: true }), 0);
  old.close();

  const store = new UsageStore(file);
  t.teardown(() => store.close());
  t.is(store.db.pragma('user_version', { simple: true }), USAGE_SCHEMA_VERSION);
  t.is(statSync(file).mode & 0o777, 0o600);
  t.deepEqual(store.samples().map((s) => [s.partition, s.at, s.cpuUsec]), [['slappart0', 100, 5000]]);
  t.is(store.disk().get('slappart0')?.bytes, 4096);
  t.deepEqual(store.pending().map((r) => [r.kind, r.periodStart, r.document]), [['period', 0, '<journal/>']]);
  t.true(store.wasIngested('/srv/x.xml', 'abc'));
  t.is(store.db.pragma('synchronous', { simple: true }), 2, 'FULL');
  // And it keeps working: the period of the old sample is queued, the sample marked reported.
  store.queuePeriod(100, 200, '<journal2/>', 300);
  t.deepEqual(store.pendingTimes(), []);
  t.is(store.outboxCounts().pending, 2);
  // Each journal has its own report id (drawn by migration 2 for the old row, at queueing for the new one).
  const ids = store.pending().map((r) => r.reportId);
  t.true(ids.every((id) => /^[0-9a-f]{32}$/.test(id)), ids.join(' '));
  t.not(ids[0], ids[1]);
});

test('reopening a migrated store changes nothing; a newer store is refused untouched', (t) => {
  const file = scratch(t);
  const first = new UsageStore(file);
  first.addSamples([{ partition: 'p', at: 1, cpuUsec: 1, memoryBytes: null, memoryPeakBytes: null, ioReadBytes: null, ioWriteBytes: null, pids: null, netRxBytes: null, netTxBytes: null, netRxPackets: null, netTxPackets: null, diskBytes: null }]);
  first.db.pragma(`user_version = ${USAGE_SCHEMA_VERSION + 1}`);
  first.close();
  const error = t.throws(() => new UsageStore(file));
  t.regex(error?.message ?? '', /newer than this program.*nothing was changed/);
  const db = new Database(file, { readonly: true });
  t.is(db.pragma('user_version', { simple: true }), USAGE_SCHEMA_VERSION + 1);
  db.close();
});
