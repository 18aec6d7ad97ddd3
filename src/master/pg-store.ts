// PostgreSQL implementation of the store (pg), for several master processes
// on one database. Exactly-once allocation across processes: every write
// transaction first takes one transaction-scoped advisory lock, so writes are
// serialised exactly as on SQLite (a read-then-write such as "first free
// partition" can never interleave), while reads run concurrently on a
// REPEATABLE READ READ ONLY snapshot. The partial unique index on
// (title, scope) stays as a second guard.
import pg from 'pg';
import { migratePg } from './pg-migrations.js';
import type {
  CertificateRow, ComputerRow, NetworkRow, PartitionCount, PartitionPatch, PartitionRow, RelatedRow, SlaveRow, SoftwareRow, Store, Tx, UsageRow,
} from './store.js';

const WRITE_LOCK = 0x51a906;

const PARTITION = `reference, computer_reference, slap_state, software_release, xml, connection_xml, slave_instance_list,
  software_type, partition_reference, requested_by, requested_state, "timestamp", reported_state, reported_at, error_log`;
const SOFTWARE = 'url, computer_reference, requested_state, reported_state, reported_at, error_log';
const NETWORK = 'partition_reference, computer_reference, reference, address, netmask';
// Reports the node sends are not part of what it reads back: they do not change the generation.
const REPORT_ONLY = new Set(['reported_state', 'reported_at', 'error_log']);
const PATCHABLE = new Set([
  'slap_state', 'software_release', 'xml', 'connection_xml', 'slave_instance_list', 'software_type',
  'partition_reference', 'requested_by', 'requested_state', 'timestamp', 'reported_state', 'reported_at', 'error_log',
]);

class PgTx implements Tx {
  /** Computers whose getFullComputerInformation answer this transaction changes. */
  readonly touched = new Set<string>();

  constructor(private readonly client: pg.PoolClient) {}

  private async all<T>(sql: string, ...params: unknown[]): Promise<T[]> {
    return (await this.client.query(sql, params)).rows as T[];
  }
  private async get<T>(sql: string, ...params: unknown[]): Promise<T | undefined> {
    return (await this.all<T>(sql, ...params))[0];
  }
  private async run(sql: string, ...params: unknown[]): Promise<number> {
    return (await this.client.query(sql, params)).rowCount ?? 0;
  }

  /** Bumps the generation of every touched computer (answer caches key on it). */
  async flushGenerations() {
    if (this.touched.size > 0) await this.run('UPDATE computer SET generation = generation + 1 WHERE reference = ANY($1)', [...this.touched]);
  }
  async computerGeneration(computer: string) {
    return (await this.get<{ generation: number }>('SELECT generation FROM computer WHERE reference = $1', computer))?.generation;
  }

  getComputer(reference: string) {
    return this.get<ComputerRow>('SELECT reference, address, netmask FROM computer WHERE reference = $1', reference);
  }
  async upsertComputer(row: ComputerRow) {
    await this.run(
      'INSERT INTO computer (reference, address, netmask) VALUES ($1, $2, $3) ' +
        'ON CONFLICT (reference) DO UPDATE SET address = excluded.address, netmask = excluded.netmask',
      row.reference, row.address, row.netmask,
    );
  }
  listComputers() {
    return this.all<ComputerRow>('SELECT reference, address, netmask FROM computer ORDER BY reference');
  }

  listSoftware(computer: string) {
    return this.all<SoftwareRow>(`SELECT ${SOFTWARE} FROM software WHERE computer_reference = $1 ORDER BY seq`, computer);
  }
  getSoftware(url: string, computer: string) {
    return this.get<SoftwareRow>(`SELECT ${SOFTWARE} FROM software WHERE url = $1 AND computer_reference = $2`, url, computer);
  }
  async upsertSoftware(url: string, computer: string, requestedState: string) {
    this.touched.add(computer);
    await this.run(
      'INSERT INTO software (url, computer_reference, requested_state) VALUES ($1, $2, $3) ' +
        'ON CONFLICT (url, computer_reference) DO UPDATE SET requested_state = excluded.requested_state',
      url, computer, requestedState,
    );
  }
  async reportSoftware(url: string, computer: string, state: string, errorLog: string | null, at: number) {
    const changes = await this.run(
      'UPDATE software SET reported_state = $1, error_log = $2, reported_at = $3 WHERE url = $4 AND computer_reference = $5',
      state, errorLog, at, url, computer,
    );
    return changes > 0;
  }
  async deleteSoftware(url: string, computer: string) {
    this.touched.add(computer);
    return (await this.run('DELETE FROM software WHERE url = $1 AND computer_reference = $2', url, computer)) > 0;
  }

  listPartitions(computer: string) {
    return this.all<PartitionRow>(`SELECT ${PARTITION} FROM computer_partition WHERE computer_reference = $1 ORDER BY seq`, computer);
  }
  listBusyPartitions() {
    return this.all<PartitionRow>(`SELECT ${PARTITION} FROM computer_partition WHERE slap_state = 'busy' ORDER BY computer_reference, seq`);
  }
  getPartition(computer: string, reference: string) {
    return this.get<PartitionRow>(
      `SELECT ${PARTITION} FROM computer_partition WHERE computer_reference = $1 AND reference = $2`, computer, reference,
    );
  }
  findInstance(title: string, requestedBy: string) {
    return this.get<PartitionRow>(
      `SELECT ${PARTITION} FROM computer_partition WHERE slap_state = 'busy' AND partition_reference = $1 AND requested_by = $2`,
      title, requestedBy,
    );
  }
  firstFreePartition(computer: string) {
    return this.get<PartitionRow>(
      `SELECT ${PARTITION} FROM computer_partition WHERE computer_reference = $1 AND slap_state = 'free' ORDER BY seq LIMIT 1`,
      computer,
    );
  }
  listChildren(rootTitle: string) {
    return this.all<PartitionRow>(
      `SELECT ${PARTITION} FROM computer_partition WHERE slap_state = 'busy' AND requested_by = $1 ORDER BY computer_reference, seq`,
      rootTitle,
    );
  }
  async insertPartition(computer: string, reference: string) {
    this.touched.add(computer);
    await this.run(
      'INSERT INTO computer_partition (reference, computer_reference) VALUES ($1, $2) ON CONFLICT DO NOTHING', reference, computer,
    );
  }
  async updatePartition(computer: string, reference: string, patch: PartitionPatch) {
    if (Object.keys(patch).some((k) => !REPORT_ONLY.has(k))) this.touched.add(computer);
    const keys = Object.keys(patch).filter((k) => PATCHABLE.has(k));
    if (keys.length === 0) return;
    const values = keys.map((k) => (patch as Record<string, unknown>)[k] ?? null);
    const set = keys.map((k, i) => `"${k}" = $${i + 1}`).join(', ');
    await this.run(
      `UPDATE computer_partition SET ${set} WHERE computer_reference = $${keys.length + 1} AND reference = $${keys.length + 2}`,
      ...values, computer, reference,
    );
  }
  async deletePartitionsExcept(computer: string, keep: string[]) {
    this.touched.add(computer);
    await this.run('DELETE FROM shared_instance WHERE computer_reference = $1 AND NOT (hosted_by = ANY($2))', computer, keep);
    await this.run('DELETE FROM partition_certificate WHERE computer_reference = $1 AND NOT (partition_reference = ANY($2))', computer, keep);
    await this.run('DELETE FROM related_instance WHERE computer_reference = $1 AND NOT (partition_reference = ANY($2))', computer, keep);
    await this.run('DELETE FROM computer_partition WHERE computer_reference = $1 AND NOT (reference = ANY($2))', computer, keep);
  }

  listNetwork(computer: string, partition: string) {
    return this.all<NetworkRow>(
      `SELECT ${NETWORK} FROM partition_network WHERE computer_reference = $1 AND partition_reference = $2 ORDER BY seq`,
      computer, partition,
    );
  }
  listComputerNetwork(computer: string) {
    return this.all<NetworkRow>(`SELECT ${NETWORK} FROM partition_network WHERE computer_reference = $1 ORDER BY seq`, computer);
  }
  async replaceNetwork(computer: string, rows: NetworkRow[]) {
    this.touched.add(computer);
    await this.run('DELETE FROM partition_network WHERE computer_reference = $1', computer);
    if (rows.length === 0) return;
    // One statement for the whole computer (unnest of parallel arrays), not one round trip per address.
    await this.run(
      'INSERT INTO partition_network (partition_reference, computer_reference, reference, address, netmask) ' +
        'SELECT p, $1, r, a, n FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS t(p, r, a, n, o) ORDER BY o',
      computer, rows.map((r) => r.partition_reference), rows.map((r) => r.reference), rows.map((r) => r.address), rows.map((r) => r.netmask),
    );
  }

  getSlave(computer: string, reference: string) {
    return this.get<SlaveRow>(
      'SELECT reference, computer_reference, connection_xml, hosted_by, asked_by FROM shared_instance WHERE computer_reference = $1 AND reference = $2',
      computer, reference,
    );
  }
  async upsertSlave(row: SlaveRow) {
    await this.run(
      'INSERT INTO shared_instance (reference, computer_reference, connection_xml, hosted_by, asked_by) VALUES ($1, $2, $3, $4, $5) ' +
        'ON CONFLICT (reference, computer_reference) DO UPDATE SET connection_xml = excluded.connection_xml, ' +
        'hosted_by = excluded.hosted_by, asked_by = excluded.asked_by',
      row.reference, row.computer_reference, row.connection_xml, row.hosted_by, row.asked_by,
    );
  }

  async insertUsage(computer: string, useString: string, at: number) {
    await this.run('INSERT INTO usage_report (computer_reference, use_string, received_at) VALUES ($1, $2, $3)', computer, useString, at);
  }
  listUsage(computer: string) {
    return this.all<UsageRow>('SELECT * FROM usage_report WHERE computer_reference = $1 ORDER BY id', computer);
  }
  latestUsage() {
    return this.all<UsageRow>(
      'SELECT DISTINCT ON (computer_reference) * FROM usage_report ORDER BY computer_reference, id DESC',
    );
  }

  getCertificate(computer: string, partition: string) {
    return this.get<CertificateRow>(
      'SELECT * FROM partition_certificate WHERE computer_reference = $1 AND partition_reference = $2', computer, partition,
    );
  }
  async putCertificate(row: CertificateRow) {
    await this.run(
      'INSERT INTO partition_certificate (computer_reference, partition_reference, fingerprint, certificate, key, issued_at) ' +
        'VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (computer_reference, partition_reference) DO UPDATE SET ' +
        'fingerprint = excluded.fingerprint, certificate = excluded.certificate, key = excluded.key, issued_at = excluded.issued_at',
      row.computer_reference, row.partition_reference, row.fingerprint, row.certificate, row.key, row.issued_at,
    );
  }
  async deleteCertificate(computer: string, partition: string) {
    await this.run('DELETE FROM partition_certificate WHERE computer_reference = $1 AND partition_reference = $2', computer, partition);
  }

  // count(*) is a bigint, which pg returns as a string: cast in SQL.
  async listRelated(computer: string, partition: string) {
    const rows = await this.all<{ title: string }>(
      'SELECT title FROM related_instance WHERE computer_reference = $1 AND partition_reference = $2 ORDER BY position', computer, partition,
    );
    return rows.map((r) => r.title);
  }
  async replaceRelated(computer: string, partition: string, titles: string[]) {
    await this.run('DELETE FROM related_instance WHERE computer_reference = $1 AND partition_reference = $2', computer, partition);
    if (titles.length > 0) {
      await this.run(
        'INSERT INTO related_instance (computer_reference, partition_reference, position, title) ' +
          'SELECT $1, $2, ordinality - 1, title FROM unnest($3::text[]) WITH ORDINALITY AS t(title, ordinality)',
        computer, partition, titles,
      );
    }
  }
  listRelatedBy(title: string) {
    return this.all<RelatedRow>(
      'SELECT computer_reference, partition_reference FROM related_instance WHERE title = $1 ORDER BY computer_reference, partition_reference', title,
    );
  }

  async countComputers() {
    return (await this.get<{ n: number }>('SELECT count(*)::int AS n FROM computer'))?.n ?? 0;
  }
  countPartitions() {
    return this.all<PartitionCount>(
      'SELECT slap_state, requested_state, count(*)::int AS count FROM computer_partition GROUP BY slap_state, requested_state ORDER BY 1, 2',
    );
  }
  async countUsage() {
    return (await this.get<{ n: number }>('SELECT count(*)::int AS n FROM usage_report'))?.n ?? 0;
  }
}

export interface PgStoreOptions {
  /** Pool size per master process. */
  max?: number;
}

export class PgStore implements Store {
  private constructor(private readonly pool: pg.Pool) {}

  /** Connects, migrates (once across concurrent starters) and returns the store. */
  static async open(uri: string, options: PgStoreOptions = {}): Promise<PgStore> {
    const pool = new pg.Pool({ connectionString: uri, max: options.max ?? 10 });
    // An idle client losing its server must not crash the master; the next query reconnects.
    pool.on('error', () => undefined);
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      await pool.end();
      throw new Error(`cannot connect to PostgreSQL at ${redact(uri)}: ${(error as Error).message}`);
    }
    try {
      await migratePg(client);
    } finally {
      client.release();
    }
    return new PgStore(pool);
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.run('BEGIN', fn, true);
  }

  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.run('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', fn, false);
  }

  private async run<T>(begin: string, fn: (tx: Tx) => Promise<T>, write: boolean): Promise<T> {
    const client = await this.pool.connect();
    let broken = false;
    try {
      await client.query(begin);
      try {
        // Serialises writers of every master process on this database.
        if (write) await client.query('SELECT pg_advisory_xact_lock($1)', [WRITE_LOCK]);
        const tx = new PgTx(client);
        const result = await fn(tx);
        if (write) await tx.flushGenerations();
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {
          broken = true;
        });
        throw error;
      }
    } catch (error) {
      broken ||= isConnectionError(error);
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

function isConnectionError(error: unknown): boolean {
  return error instanceof Error && /Connection terminated|ECONNRESET|EPIPE|not queryable/i.test(error.message);
}

/** The URI without its password, for error messages. */
export function redact(uri: string): string {
  return uri.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
}

export const isPostgresUri = (uri: string): boolean => /^postgres(ql)?:\/\//.test(uri);
