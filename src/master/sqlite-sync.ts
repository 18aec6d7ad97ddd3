// The SQLite path of what nodes send most (getFullComputerInformation, software and partition
// reports, connection publications, usage journals): synchronous queries and domain steps, each
// request one better-sqlite3 db.transaction(fn) with no await inside (SqliteStore.runSync).
// Measured a little cheaper than the promise-wrapped path (docs/performance.md "Master: SQLite
// transactions"); PostgreSQL, and every other request on SQLite, keep the async Tx of
// sql-store.ts. Same SQL and same checks as there (node-ops.ts, instance-ops.ts): a test
// compares both paths on one database (test/master/sqlite-sync.test.ts).
import { computerObject, softwareReleaseObject } from '../slap/shapes.js';
import type { PyObject, PyRecord } from '../slap/pyvalue.js';
import type { StatementCache } from '../util/sqlite.js';
import { storedXml } from './instance-ops.js';
import { answerBoundOf, checkJournal, instanceXmlGrows, refuseUnservable, type MasterSettings } from './node-ops.js';
import { partitionObject } from './render.js';
import { NETWORK, PARTITION, PATCHABLE, REPORT_ONLY, seriesUpserts, SOFTWARE } from './sql-store.js';
import type { ComputerRow, NetworkRow, PartitionPatch, PartitionRow, SeriesWriteRow, SoftwareRow } from './store.js';
import { DAY, HOUR, journalPoints, RAW, RETENTION, SERIES_RESOURCES, seriesWrites } from './usage-series.js';
import { checkId, notFound } from './validate.js';

const SERIES_RESOURCE_LIST = JSON.stringify(Object.keys(SERIES_RESOURCES));

/** The row operations of those requests, synchronous (SQLite only: `rowid` keeps format order). */
export class SyncTx {
  /** Computers whose answer this transaction changes (their generation is bumped before COMMIT). */
  readonly touched = new Set<string>();
  constructor(private readonly statements: StatementCache) {}

  private all<T>(sql: string, ...params: unknown[]): T[] {
    return this.statements.get(sql).all(...params) as T[];
  }
  private get<T>(sql: string, ...params: unknown[]): T | undefined {
    return this.statements.get(sql).get(...params) as T | undefined;
  }
  private run(sql: string, ...params: unknown[]): number {
    return this.statements.get(sql).run(...params).changes;
  }

  flushGenerations(): void {
    for (const c of this.touched) this.run('UPDATE computer SET generation = generation + 1 WHERE reference = ?', c);
  }
  computerGeneration(computer: string) {
    return this.get<{ generation: number }>('SELECT generation FROM computer WHERE reference = ?', computer)?.generation;
  }
  getComputer(reference: string) {
    return this.get<ComputerRow>('SELECT reference, address, netmask FROM computer WHERE reference = ?', reference);
  }
  listSoftware(computer: string) {
    return this.all<SoftwareRow>(`SELECT ${SOFTWARE} FROM software WHERE computer_reference = ? ORDER BY rowid`, computer);
  }
  listPartitions(computer: string) {
    return this.all<PartitionRow>(`SELECT ${PARTITION} FROM computer_partition WHERE computer_reference = ? ORDER BY rowid`, computer);
  }
  listComputerNetwork(computer: string) {
    return this.all<NetworkRow>(`SELECT ${NETWORK} FROM partition_network WHERE computer_reference = ? ORDER BY rowid`, computer);
  }
  getPartition(computer: string, reference: string) {
    return this.get<PartitionRow>(`SELECT ${PARTITION} FROM computer_partition WHERE computer_reference = ? AND reference = ?`, computer, reference);
  }
  updatePartition(computer: string, reference: string, patch: PartitionPatch) {
    if (Object.keys(patch).some((k) => !REPORT_ONLY.has(k))) this.touched.add(computer);
    const keys = Object.keys(patch).filter((k) => PATCHABLE.has(k));
    if (keys.length === 0) return;
    const values = keys.map((k) => (patch as Record<string, unknown>)[k] ?? null);
    this.run(`UPDATE computer_partition SET ${keys.map((k) => `"${k}" = ?`).join(', ')} WHERE computer_reference = ? AND reference = ?`,
      ...values, computer, reference);
  }
  reportSoftware(url: string, computer: string, state: string, errorLog: string | null, at: number) {
    return this.run('UPDATE software SET reported_state = ?, error_log = ?, reported_at = ? WHERE url = ? AND computer_reference = ?',
      state, errorLog, at, url, computer) > 0;
  }
  insertUsage(computer: string, useString: string, at: number, reportId: string | null) {
    return this.run('INSERT INTO usage_report (computer_reference, use_string, received_at, report_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      computer, useString, at, reportId) > 0;
  }
  addSeries(computer: string, writes: ReadonlyArray<SeriesWriteRow>) {
    for (const [sql, params] of seriesUpserts(computer, writes)) this.run(sql, ...params);
  }
  pruneSeries(resolution: number, before: number) {
    return this.run('DELETE FROM usage_series WHERE resource IN (SELECT value FROM json_each(?)) AND resolution = ? AND bucket < ?',
      SERIES_RESOURCE_LIST, resolution, before);
  }
}

function requirePartition(tx: SyncTx, computer: string, partition: string): PartitionRow {
  const row = tx.getPartition(checkId('computer id', computer), checkId('partition id', partition));
  if (!row) throw notFound(`unknown partition ${partition} of computer ${computer}`);
  return row;
}

function checkServable(tx: SyncTx, computer: string): void {
  refuseUnservable(computer, answerBoundOf(computer, tx.listPartitions(computer), tx.listSoftware(computer), tx.listComputerNetwork(computer)));
}

export function computerInformation(tx: SyncTx, settings: MasterSettings, computer: string): PyObject {
  const known = tx.getComputer(computer);
  if (!known && computer !== settings.defaultComputer) throw notFound(`unknown computer ${computer}`);
  const software = tx.listSoftware(computer);
  const partitions = tx.listPartitions(computer);
  const network = new Map<string, NetworkRow[]>();
  for (const n of tx.listComputerNetwork(computer)) {
    const list = network.get(n.partition_reference);
    if (list) list.push(n);
    else network.set(n.partition_reference, [n]);
  }
  const objects = partitions.map((p) => partitionObject(p, network.get(p.reference) ?? []));
  return computerObject(computer, software.map((s) => softwareReleaseObject(s.url, computer, s.requested_state)), objects);
}

export function reportSoftware(tx: SyncTx, url: string, computer: string, state: string, errorLog: string | null): void {
  tx.reportSoftware(url, computer, state, errorLog, Date.now() / 1000);
}

export function reportPartition(tx: SyncTx, computer: string, partition: string, state: string, errorLog: string | null): void {
  requirePartition(tx, computer, partition);
  tx.updatePartition(computer, partition, { reported_state: state, error_log: errorLog, reported_at: Date.now() / 1000 });
}

export function setConnection(tx: SyncTx, computer: string, partition: string, params: PyRecord): void {
  const host = requirePartition(tx, computer, partition);
  const xml = storedXml('connection parameters', params);
  tx.updatePartition(computer, partition, { connection_xml: xml });
  if (instanceXmlGrows(host.connection_xml, xml)) checkServable(tx, computer);
}

export function storeUsage(tx: SyncTx, computer: string, useString: string, reportId: string | null): boolean {
  if (!tx.getComputer(computer)) throw notFound(`unknown computer ${computer}`);
  checkJournal(useString);
  const now = Date.now() / 1000;
  if (!tx.insertUsage(computer, useString, now, reportId)) return false;
  tx.addSeries(computer, seriesWrites(journalPoints(useString, now), now));
  for (const resolution of [RAW, HOUR, DAY] as const) tx.pruneSeries(resolution, now - RETENTION[resolution]);
  return true;
}
