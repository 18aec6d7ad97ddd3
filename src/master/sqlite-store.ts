// SQLite implementation of the store (better-sqlite3). WAL + synchronous=FULL:
// an acknowledged write survives kill -9 and power loss. One connection, and an
// in-process queue so that exactly one transaction runs at a time: two requests
// can never pick the same free partition (the reference had no transaction).
import Database from 'better-sqlite3';
import { closeSync, constants, existsSync, fchmodSync, fstatSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { checkNotNewer, migrate } from './migrations.js';
import { importSlapproxyDatabase, type SlapproxyImportReport } from './slapproxy-import.js';
import type {
  CertificateRow, ComputerRow, PartitionCount, NetworkRow, PartitionPatch, PartitionRow, RelatedRow, SlaveRow, SoftwareRow, Store, Tx, UsageRow,
} from './store.js';

// Reports the node sends are not part of what it reads back: they do not change the generation.
const REPORT_ONLY = new Set(['reported_state', 'reported_at', 'error_log']);
const PATCHABLE = new Set([
  'slap_state', 'software_release', 'xml', 'connection_xml', 'slave_instance_list', 'software_type',
  'partition_reference', 'requested_by', 'requested_state', 'timestamp', 'reported_state', 'reported_at', 'error_log',
]);

class SqliteTx implements Tx {
  /** Computers whose getFullComputerInformation answer this transaction changes. */
  readonly touched = new Set<string>();

  constructor(
    private readonly db: Database.Database,
    private readonly statements: Map<string, Database.Statement>,
  ) {}

  /** Statements are prepared once per connection (the SQL texts are constants). */
  private prepare(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
  private all<T>(sql: string, ...params: unknown[]): Promise<T[]> {
    return Promise.resolve(this.prepare(sql).all(...params) as T[]);
  }
  private get<T>(sql: string, ...params: unknown[]): Promise<T | undefined> {
    return Promise.resolve(this.prepare(sql).get(...params) as T | undefined);
  }
  private run(sql: string, ...params: unknown[]): Promise<number> {
    return Promise.resolve(this.prepare(sql).run(...params).changes);
  }

  /** Bumps the generation of every touched computer (answer caches key on it). */
  async flushGenerations() {
    for (const computer of this.touched) await this.run('UPDATE computer SET generation = generation + 1 WHERE reference = ?', computer);
  }
  async computerGeneration(computer: string) {
    return (await this.get<{ generation: number }>('SELECT generation FROM computer WHERE reference = ?', computer))?.generation;
  }

  getComputer(reference: string) {
    return this.get<ComputerRow>('SELECT reference, address, netmask FROM computer WHERE reference = ?', reference);
  }
  async upsertComputer(row: ComputerRow) {
    await this.run(
      'INSERT INTO computer (reference, address, netmask) VALUES (?, ?, ?) ' +
        'ON CONFLICT (reference) DO UPDATE SET address = excluded.address, netmask = excluded.netmask',
      row.reference, row.address, row.netmask,
    );
  }
  listComputers() {
    return this.all<ComputerRow>('SELECT reference, address, netmask FROM computer ORDER BY reference');
  }

  listSoftware(computer: string) {
    return this.all<SoftwareRow>('SELECT * FROM software WHERE computer_reference = ? ORDER BY rowid', computer);
  }
  getSoftware(url: string, computer: string) {
    return this.get<SoftwareRow>('SELECT * FROM software WHERE url = ? AND computer_reference = ?', url, computer);
  }
  async upsertSoftware(url: string, computer: string, requestedState: string) {
    this.touched.add(computer);
    await this.run(
      'INSERT INTO software (url, computer_reference, requested_state) VALUES (?, ?, ?) ' +
        'ON CONFLICT (url, computer_reference) DO UPDATE SET requested_state = excluded.requested_state',
      url, computer, requestedState,
    );
  }
  async reportSoftware(url: string, computer: string, state: string, errorLog: string | null, at: number) {
    const changes = await this.run(
      'UPDATE software SET reported_state = ?, error_log = ?, reported_at = ? WHERE url = ? AND computer_reference = ?',
      state, errorLog, at, url, computer,
    );
    return changes > 0;
  }
  async deleteSoftware(url: string, computer: string) {
    this.touched.add(computer);
    return (await this.run('DELETE FROM software WHERE url = ? AND computer_reference = ?', url, computer)) > 0;
  }

  listPartitions(computer: string) {
    return this.all<PartitionRow>('SELECT * FROM computer_partition WHERE computer_reference = ? ORDER BY rowid', computer);
  }
  listBusyPartitions() {
    return this.all<PartitionRow>("SELECT * FROM computer_partition WHERE slap_state = 'busy' ORDER BY computer_reference, rowid");
  }
  getPartition(computer: string, reference: string) {
    return this.get<PartitionRow>('SELECT * FROM computer_partition WHERE computer_reference = ? AND reference = ?', computer, reference);
  }
  findInstance(title: string, requestedBy: string) {
    return this.get<PartitionRow>(
      "SELECT * FROM computer_partition WHERE slap_state = 'busy' AND partition_reference = ? AND requested_by = ?",
      title, requestedBy,
    );
  }
  firstFreePartition(computer: string) {
    return this.get<PartitionRow>(
      "SELECT * FROM computer_partition WHERE computer_reference = ? AND slap_state = 'free' ORDER BY rowid LIMIT 1",
      computer,
    );
  }
  listChildren(rootTitle: string) {
    return this.all<PartitionRow>(
      "SELECT * FROM computer_partition WHERE slap_state = 'busy' AND requested_by = ? ORDER BY computer_reference, rowid",
      rootTitle,
    );
  }
  async insertPartition(computer: string, reference: string) {
    this.touched.add(computer);
    await this.run('INSERT OR IGNORE INTO computer_partition (reference, computer_reference) VALUES (?, ?)', reference, computer);
  }
  async updatePartition(computer: string, reference: string, patch: PartitionPatch) {
    if (Object.keys(patch).some((k) => !REPORT_ONLY.has(k))) this.touched.add(computer);
    const keys = Object.keys(patch).filter((k) => PATCHABLE.has(k));
    if (keys.length === 0) return;
    const values = keys.map((k) => (patch as Record<string, unknown>)[k] ?? null);
    await this.run(
      `UPDATE computer_partition SET ${keys.map((k) => `${k} = ?`).join(', ')} WHERE computer_reference = ? AND reference = ?`,
      ...values, computer, reference,
    );
  }
  async deletePartitionsExcept(computer: string, keep: string[]) {
    this.touched.add(computer);
    const list = JSON.stringify(keep);
    await this.run(
      'DELETE FROM shared_instance WHERE computer_reference = ? AND hosted_by NOT IN (SELECT value FROM json_each(?))',
      computer, list,
    );
    await this.run(
      'DELETE FROM partition_certificate WHERE computer_reference = ? AND partition_reference NOT IN (SELECT value FROM json_each(?))',
      computer, list,
    );
    await this.run(
      'DELETE FROM related_instance WHERE computer_reference = ? AND partition_reference NOT IN (SELECT value FROM json_each(?))',
      computer, list,
    );
    await this.run(
      'DELETE FROM computer_partition WHERE computer_reference = ? AND reference NOT IN (SELECT value FROM json_each(?))',
      computer, list,
    );
  }

  listNetwork(computer: string, partition: string) {
    return this.all<NetworkRow>(
      'SELECT * FROM partition_network WHERE computer_reference = ? AND partition_reference = ? ORDER BY rowid',
      computer, partition,
    );
  }
  listComputerNetwork(computer: string) {
    return this.all<NetworkRow>('SELECT * FROM partition_network WHERE computer_reference = ? ORDER BY rowid', computer);
  }
  async replaceNetwork(computer: string, rows: NetworkRow[]) {
    this.touched.add(computer);
    await this.run('DELETE FROM partition_network WHERE computer_reference = ?', computer);
    const insert = this.prepare(
      'INSERT INTO partition_network (partition_reference, computer_reference, reference, address, netmask) VALUES (?, ?, ?, ?, ?)',
    );
    for (const r of rows) insert.run(r.partition_reference, computer, r.reference, r.address, r.netmask);
  }

  getSlave(computer: string, reference: string) {
    return this.get<SlaveRow>('SELECT * FROM shared_instance WHERE computer_reference = ? AND reference = ?', computer, reference);
  }
  async upsertSlave(row: SlaveRow) {
    await this.run(
      'INSERT INTO shared_instance (reference, computer_reference, connection_xml, hosted_by, asked_by) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (reference, computer_reference) DO UPDATE SET connection_xml = excluded.connection_xml, ' +
        'hosted_by = excluded.hosted_by, asked_by = excluded.asked_by',
      row.reference, row.computer_reference, row.connection_xml, row.hosted_by, row.asked_by,
    );
  }

  async insertUsage(computer: string, useString: string, at: number) {
    await this.run('INSERT INTO usage_report (computer_reference, use_string, received_at) VALUES (?, ?, ?)', computer, useString, at);
  }
  listUsage(computer: string) {
    return this.all<UsageRow>('SELECT * FROM usage_report WHERE computer_reference = ? ORDER BY id', computer);
  }
  latestUsage() {
    return this.all<UsageRow>(
      'SELECT * FROM usage_report WHERE id IN (SELECT max(id) FROM usage_report GROUP BY computer_reference) ORDER BY computer_reference',
    );
  }

  getCertificate(computer: string, partition: string) {
    return this.get<CertificateRow>(
      'SELECT * FROM partition_certificate WHERE computer_reference = ? AND partition_reference = ?', computer, partition,
    );
  }
  async putCertificate(row: CertificateRow) {
    await this.run(
      'INSERT OR REPLACE INTO partition_certificate (computer_reference, partition_reference, fingerprint, certificate, key, issued_at) ' +
        'VALUES (?, ?, ?, ?, ?, ?)',
      row.computer_reference, row.partition_reference, row.fingerprint, row.certificate, row.key, row.issued_at,
    );
  }
  async deleteCertificate(computer: string, partition: string) {
    await this.run('DELETE FROM partition_certificate WHERE computer_reference = ? AND partition_reference = ?', computer, partition);
  }

  async listRelated(computer: string, partition: string) {
    const rows = await this.all<{ title: string }>(
      'SELECT title FROM related_instance WHERE computer_reference = ? AND partition_reference = ? ORDER BY position', computer, partition,
    );
    return rows.map((r) => r.title);
  }
  async replaceRelated(computer: string, partition: string, titles: string[]) {
    await this.run('DELETE FROM related_instance WHERE computer_reference = ? AND partition_reference = ?', computer, partition);
    const insert = this.prepare('INSERT INTO related_instance (computer_reference, partition_reference, position, title) VALUES (?, ?, ?, ?)');
    titles.forEach((title, position) => insert.run(computer, partition, position, title));
  }
  listRelatedBy(title: string) {
    return this.all<RelatedRow>(
      'SELECT computer_reference, partition_reference FROM related_instance WHERE title = ? ORDER BY computer_reference, partition_reference', title,
    );
  }

  async countComputers() {
    return (await this.get<{ n: number }>('SELECT count(*) AS n FROM computer'))?.n ?? 0;
  }
  countPartitions() {
    return this.all<PartitionCount>(
      'SELECT slap_state, requested_state, count(*) AS count FROM computer_partition GROUP BY slap_state, requested_state ORDER BY 1, 2',
    );
  }
  async countUsage() {
    return (await this.get<{ n: number }>('SELECT count(*) AS n FROM usage_report'))?.n ?? 0;
  }
}

/**
 * The database holds partition private keys: the file and its -wal/-shm are
 * 0600 whatever the umask (created so, and an existing looser mode is
 * tightened with a warning). SQLite gives -wal/-shm the database file's mode.
 */
export function secureDatabaseFiles(file: string, warn: (message: string) => void, create: boolean): void {
  for (const name of [file, `${file}-wal`, `${file}-shm`]) {
    if ((name !== file || !create) && !existsSync(name)) continue;
    const fd = openSync(name, constants.O_RDWR | constants.O_CREAT, 0o600);
    try {
      const mode = fstatSync(fd).mode & 0o7777;
      if (mode !== 0o600) {
        fchmodSync(fd, 0o600);
        // A file we just created with the umask applied is not worth a warning; an older looser one is.
        if ((mode & 0o077) !== 0) warn(`${name} was readable or writable by others (mode ${mode.toString(8).padStart(4, '0')}); set to 0600`);
      }
    } finally {
      closeSync(fd);
    }
  }
}

/** Default warning sink when the master gives none. */
const emitWarning = (message: string) => process.emitWarning(message, 'SecurityWarning');

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly statements = new Map<string, Database.Statement>();
  private closed = false;

  /** Set when this open converted a reference slapproxy database (slapproxy-import.ts). */
  readonly imported: SlapproxyImportReport | undefined;

  constructor(file: string, warn: (message: string) => void = emitWarning) {
    const onDisk = file !== ':memory:' && file !== '';
    if (onDisk) {
      mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
      secureDatabaseFiles(file, warn, true);
    }
    this.imported = onDisk ? importSlapproxyDatabase(file) : undefined;
    // The converted file replaced the original one: as private as it.
    if (this.imported) secureDatabaseFiles(file, () => undefined, false);
    this.db = new Database(file);
    try {
      checkNotNewer(this.db);
    } catch (error) {
      this.db.close();
      throw error;
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('foreign_keys = ON');
    this.db.pragma('busy_timeout = 5000');
    migrate(this.db);
    if (onDisk) secureDatabaseFiles(file, warn, false);
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.enqueue('BEGIN IMMEDIATE', fn);
  }

  /** One connection: reads queue like writes (a deferred BEGIN takes no write lock). */
  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.enqueue('BEGIN', fn);
  }

  private enqueue<T>(begin: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.closed) throw new Error('store is closed');
      this.db.exec(begin);
      try {
        const tx = new SqliteTx(this.db, this.statements);
        const result = await fn(tx);
        await tx.flushGenerations();
        this.db.exec('COMMIT');
        return result;
      } catch (error) {
        if (this.db.inTransaction) this.db.exec('ROLLBACK');
        throw error;
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.queue;
    this.closed = true;
    this.db.close();
  }
}
