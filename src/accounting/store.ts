// The node's usage store: <instance_root>/var/accounting/usage.sqlite, root
// only (directory 0700, file 0600): per-partition usage is private.
//
// Tables: sample (one row per partition per collect run), disk (last disk
// usage measured per partition), outbox (journals waiting for the master's
// acknowledgement), ingested (partition report files already copied into the
// outbox, so a crash between commit and unlink does not send them twice).
import type Database from 'better-sqlite3';
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Sample } from './aggregate.js';
import { migrateSqlite, openSqlite, StatementCache } from '../util/sqlite.js';

export interface DiskEntry {
  partition: string;
  bytes: number;
  at: number;
  partial: boolean;
  method: string;
}

export interface OutboxRow {
  id: number;
  kind: 'period' | 'partition-files' | 'computer-file';
  periodStart: number | null;
  document: string;
  createdAt: number;
  /** Sent with the journal each time (useComputer's report_id): our master stores it once. */
  reportId: string;
}

/**
 * Append a migration, never edit one: migrations[i] takes the schema from
 * PRAGMA user_version i to i + 1. Migration 1 is the layout the store had
 * before it was versioned, with IF NOT EXISTS: a database of that layout
 * (user_version 0, tables present) is adopted as version 1 unchanged.
 */
const MIGRATIONS: readonly string[] = [`
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
`, `
-- (issue 32) each journal's id, drawn when it is queued and sent with it every time: our master stores
-- a journal sent again (killed after the master's answer, before sent_at) once.
ALTER TABLE outbox ADD COLUMN report_id TEXT;
UPDATE outbox SET report_id = lower(hex(randomblob(16)));
`];

export const USAGE_SCHEMA_VERSION = MIGRATIONS.length;

/** 128 random bits, drawn by SQLite inside the transaction that queues the journal. */
const NEW_REPORT_ID = 'lower(hex(randomblob(16)))';

interface SampleRow {
  partition: string; at: number; cpu_usec: number | null; memory_bytes: number | null; memory_peak_bytes: number | null;
  io_read_bytes: number | null; io_write_bytes: number | null; pids: number | null; net_rx_bytes: number | null;
  net_tx_bytes: number | null; net_rx_packets: number | null; net_tx_packets: number | null; disk_bytes: number | null;
}

const fromRow = (r: SampleRow): Sample => ({
  partition: r.partition, at: r.at, cpuUsec: r.cpu_usec, memoryBytes: r.memory_bytes, memoryPeakBytes: r.memory_peak_bytes,
  ioReadBytes: r.io_read_bytes, ioWriteBytes: r.io_write_bytes, pids: r.pids, netRxBytes: r.net_rx_bytes,
  netTxBytes: r.net_tx_bytes, netRxPackets: r.net_rx_packets, netTxPackets: r.net_tx_packets, diskBytes: r.disk_bytes,
});

export function storePath(instanceRoot: string): string {
  return path.join(instanceRoot, 'var', 'accounting', 'usage.sqlite');
}

export class UsageStore {
  readonly db: Database.Database;
  private readonly statements: StatementCache;

  constructor(readonly file: string) {
    const dir = path.dirname(file);
    // <instance_root>/var stays 0755 (world-readable hardware status); only our directory is closed.
    mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    // FULL, not NORMAL: ingestion deletes the partitions' report files once
    // their journal is committed, and the outbox is what the master bills from;
    // under NORMAL a power loss could undo a commit whose source files are gone.
    // The cost is one fsync per commit, a few commits per collect/report run.
    try {
      this.db = openSqlite(file, { synchronous: 'FULL', busyTimeoutMs: 10000, notNewerThan: { version: USAGE_SCHEMA_VERSION, what: `usage store ${file}` } });
    } catch (error) {
      throw new Error(`cannot open the usage store ${file}: ${(error as Error).message}`);
    }
    try {
      migrateSqlite(this.db, MIGRATIONS, `usage store ${file}`);
    } catch (error) {
      this.db.close();
      throw error;
    }
    this.statements = new StatementCache(this.db);
  }

  private sql(text: string): Database.Statement {
    return this.statements.get(text);
  }

  close(): void {
    this.db.close();
  }

  addSamples(samples: readonly Sample[]): void {
    const insert = this.sql(`INSERT INTO sample (partition, at, cpu_usec, memory_bytes, memory_peak_bytes,
      io_read_bytes, io_write_bytes, pids, net_rx_bytes, net_tx_bytes, net_rx_packets, net_tx_packets, disk_bytes)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.db.transaction(() => {
      for (const s of samples) {
        insert.run(s.partition, s.at, s.cpuUsec, s.memoryBytes, s.memoryPeakBytes, s.ioReadBytes, s.ioWriteBytes, s.pids,
          s.netRxBytes, s.netTxBytes, s.netRxPackets, s.netTxPackets, s.diskBytes);
      }
    })();
  }

  samples(partition?: string): Sample[] {
    const rows = partition === undefined
      ? this.sql('SELECT * FROM sample ORDER BY at, id').all()
      : this.sql('SELECT * FROM sample WHERE partition = ? ORDER BY at, id').all(partition);
    return (rows as SampleRow[]).map(fromRow);
  }

  /** The latest sample of each partition (node daemon /metrics). */
  latestSamples(): Sample[] {
    const rows = this.db.prepare('SELECT * FROM sample WHERE id IN (SELECT max(id) FROM sample GROUP BY partition) ORDER BY partition').all();
    return (rows as SampleRow[]).map(fromRow);
  }

  pendingTimes(): number[] {
    return (this.sql('SELECT DISTINCT at FROM sample WHERE reported = 0').pluck().all() as number[]);
  }

  /** Pending samples of [start, end) and each partition's last sample before start. */
  periodSamples(start: number, end: number): { samples: Sample[]; baselines: Map<string, Sample> } {
    const samples = (this.sql('SELECT * FROM sample WHERE reported = 0 AND at >= ? AND at < ? ORDER BY at, id').all(start, end) as SampleRow[]).map(fromRow);
    const baselines = new Map<string, Sample>();
    const before = this.sql('SELECT * FROM sample WHERE partition = ? AND at < ? ORDER BY at DESC, id DESC LIMIT 1');
    for (const partition of new Set(samples.map((s) => s.partition))) {
      const row = before.get(partition, start) as SampleRow | undefined;
      if (row) baselines.set(partition, fromRow(row));
    }
    return { samples, baselines };
  }

  /**
   * Marks the period's samples reported and queues its journal, in one
   * transaction: a crash leaves either both or neither.
   */
  queuePeriod(start: number, end: number, document: string | null, now: number): void {
    this.db.transaction(() => {
      if (document !== null) {
        this.sql(`INSERT INTO outbox (kind, period_start, document, created_at, report_id) VALUES ('period', ?, ?, ?, ${NEW_REPORT_ID})`).run(start, document, now);
      }
      this.sql('UPDATE sample SET reported = 1 WHERE reported = 0 AND at >= ? AND at < ?').run(start, end);
    })();
  }

  /** Queues a journal made from files and records the files, in one transaction. */
  queueFiles(kind: 'partition-files' | 'computer-file', document: string, files: ReadonlyArray<{ path: string; sha256: string }>, now: number): number {
    return this.db.transaction(() => {
      const id = Number(this.sql(`INSERT INTO outbox (kind, document, created_at, report_id) VALUES (?, ?, ?, ${NEW_REPORT_ID})`).run(kind, document, now).lastInsertRowid);
      const record = this.sql('INSERT OR IGNORE INTO ingested (path, sha256, outbox_id, at) VALUES (?, ?, ?, ?)');
      for (const f of files) record.run(f.path, f.sha256, id, now);
      return id;
    })();
  }

  wasIngested(file: string, sha256: string): boolean {
    return this.sql('SELECT 1 FROM ingested WHERE path = ? AND sha256 = ?').get(file, sha256) !== undefined;
  }

  pending(): OutboxRow[] {
    const rows = this.sql('SELECT id, kind, period_start, document, created_at, report_id FROM outbox WHERE sent_at IS NULL AND rejected IS NULL ORDER BY id').all() as
      Array<{ id: number; kind: OutboxRow['kind']; period_start: number | null; document: string; created_at: number; report_id: string }>;
    return rows.map((r) => ({ id: r.id, kind: r.kind, periodStart: r.period_start, document: r.document, createdAt: r.created_at, reportId: r.report_id }));
  }

  markSent(id: number, now: number): void {
    this.sql('UPDATE outbox SET sent_at = ? WHERE id = ?').run(now, id);
  }

  /** The master refused the document (4xx): kept for inspection, never resent. */
  markRejected(id: number, reason: string): void {
    this.sql('UPDATE outbox SET rejected = ? WHERE id = ?').run(reason.slice(0, 2000), id);
  }

  outboxCounts(): { pending: number; sent: number; rejected: number } {
    return this.sql(`SELECT
      count(*) FILTER (WHERE sent_at IS NULL AND rejected IS NULL) AS pending,
      count(*) FILTER (WHERE sent_at IS NOT NULL) AS sent,
      count(*) FILTER (WHERE rejected IS NOT NULL) AS rejected FROM outbox`).get() as { pending: number; sent: number; rejected: number };
  }

  disk(): Map<string, DiskEntry> {
    const rows = this.sql('SELECT * FROM disk').all() as Array<{ partition: string; bytes: number; at: number; partial: number; method: string }>;
    return new Map(rows.map((r) => [r.partition, { ...r, partial: r.partial === 1 }]));
  }

  setDisk(entry: DiskEntry): void {
    this.sql('INSERT OR REPLACE INTO disk (partition, bytes, at, partial, method) VALUES (?, ?, ?, ?, ?)')
      .run(entry.partition, entry.bytes, entry.at, entry.partial ? 1 : 0, entry.method);
  }

  /**
   * Bounded retention: reported samples, sent journals and ingestion records
   * older than `days`. Pending data is never deleted (it is aggregated each
   * report run, so it does not pile up while the master is away).
   */
  prune(now: number, days: number): { samples: number; outbox: number } {
    const cutoff = now - days * 86400;
    return this.db.transaction(() => {
      const samples = this.sql('DELETE FROM sample WHERE reported = 1 AND at < ?').run(cutoff).changes;
      const outbox = this.sql('DELETE FROM outbox WHERE (sent_at IS NOT NULL AND sent_at < ?) OR (rejected IS NOT NULL AND created_at < ?)').run(cutoff, cutoff).changes;
      this.sql('DELETE FROM ingested WHERE at < ? AND outbox_id NOT IN (SELECT id FROM outbox)').run(cutoff);
      return { samples, outbox };
    })();
  }
}
