// The store's queries, written once for both engines: one SQL text per query,
// with `?` placeholders, run through a SqlEngine (sqlite-store.ts,
// pg-store.ts). A Dialect holds the three things the engines spell
// differently: placeholders, the column that keeps format order, and how one
// parameter carries a list. Everything else (upserts, CAST, ordering) is SQL
// both accept. Kysely was the alternative; see docs/master.md "One store".
import { createHash } from 'node:crypto';
import type {
  CertificateRow, ComputerRow, HardwareRow, NetworkRow, PartitionCount, PartitionPatch, PartitionRow, PromiseRow, RelatedRow, SeriesBucketRow, SeriesWriteRow, ShadirRow, SlaveRow, SoftwareRow, Tx, UsageRow,
} from './store.js';
import { SERIES_RESOURCES } from './usage-series.js';

export interface Dialect {
  /** The query text with its `?` placeholders in the engine's form. */
  placeholders(sql: string): string;
  /** The column that keeps insertion (format) order. */
  readonly order: string;
  /** A condition true when `column` is in the list one placeholder carries, and that placeholder's value. */
  inList(column: string): string;
  listValue(values: string[]): unknown;
}

/** What a transaction runs its queries on (one connection, inside BEGIN … COMMIT). */
export interface SqlEngine {
  readonly dialect: Dialect;
  all<T>(sql: string, params: unknown[]): Promise<T[]>;
  /** The first row. */
  get<T>(sql: string, params: unknown[]): Promise<T | undefined>;
  /** Runs a write; resolves to the number of rows changed. */
  run(sql: string, params: unknown[]): Promise<number>;
  /** `head` is `INSERT INTO t (a, b, …)`; inserts the rows in order (in as few round trips as the engine allows). */
  insertMany(head: string, rows: unknown[][]): Promise<void>;
}

export const sqliteDialect: Dialect = {
  placeholders: (sql) => sql,
  order: 'rowid',
  inList: (column) => `${column} IN (SELECT value FROM json_each(?))`,
  listValue: (values) => JSON.stringify(values),
};

export const postgresDialect: Dialect = {
  placeholders: (sql) => {
    let n = 0;
    return sql.replace(/\?/g, () => `$${(n += 1)}`);
  },
  order: 'seq',
  inList: (column) => `${column} = ANY(?)`,
  listValue: (values) => values,
};

export const PARTITION = `reference, computer_reference, slap_state, software_release, xml, connection_xml, slave_instance_list,
  software_type, partition_reference, requested_by, requested_state, "timestamp", reported_state, reported_at, error_log`;
export const SOFTWARE = 'url, computer_reference, requested_state, reported_state, reported_at, error_log';
export const NETWORK = 'partition_reference, computer_reference, reference, address, netmask';
const SLAVE = 'reference, computer_reference, connection_xml, hosted_by, asked_by';
const USAGE = 'id, computer_reference, use_string, received_at';
const CERTIFICATE = 'computer_reference, partition_reference, fingerprint, certificate, key, issued_at';

// Reports the node sends are not part of what it reads back: they do not change the generation.
export const REPORT_ONLY = new Set(['reported_state', 'reported_at', 'error_log']);
export const PATCHABLE = new Set([
  'slap_state', 'software_release', 'xml', 'connection_xml', 'slave_instance_list', 'software_type',
  'partition_reference', 'requested_by', 'requested_state', 'timestamp', 'reported_state', 'reported_at', 'error_log',
]);

/** addSeries' statements: multi-row upserts (each key once per statement), a year of history is ~10^5 rows. */
export function seriesUpserts(computer: string, writes: ReadonlyArray<SeriesWriteRow>): Array<[string, unknown[]]> {
  const tail = ' ON CONFLICT (computer_reference, partition_reference, resource, resolution, bucket) DO UPDATE SET ' +
    // Raw buckets are one report period each: a resent journal replaces, never adds.
    'total = CASE WHEN excluded.resolution = 0 THEN excluded.total ELSE usage_series.total + excluded.total END, ' +
    'samples = CASE WHEN excluded.resolution = 0 THEN excluded.samples ELSE usage_series.samples + excluded.samples END, ' +
    'maximum = CASE WHEN excluded.resolution = 0 OR excluded.maximum > usage_series.maximum THEN excluded.maximum ELSE usage_series.maximum END';
  const out: Array<[string, unknown[]]> = [];
  for (let i = 0; i < writes.length; i += 250) {
    const chunk = writes.slice(i, i + 250);
    out.push([
      'INSERT INTO usage_series (computer_reference, partition_reference, resource, resolution, bucket, total, samples, maximum) VALUES ' +
        chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ') + tail,
      chunk.flatMap((w) => [computer, w.partition, w.resource, w.resolution, w.bucket, w.total, w.samples, w.maximum]),
    ]);
  }
  return out;
}

export class SqlTx implements Tx {
  /** Computers whose getFullComputerInformation answer this transaction changes. */
  readonly touched = new Set<string>();
  private readonly order: string;

  constructor(private readonly engine: SqlEngine) {
    this.order = engine.dialect.order;
  }

  private all<T>(sql: string, ...params: unknown[]): Promise<T[]> {
    return this.engine.all<T>(sql, params);
  }
  private get<T>(sql: string, ...params: unknown[]): Promise<T | undefined> {
    return this.engine.get<T>(sql, params);
  }
  private run(sql: string, ...params: unknown[]): Promise<number> {
    return this.engine.run(sql, params);
  }
  private inList(column: string): string {
    return this.engine.dialect.inList(column);
  }
  private list(values: string[]): unknown {
    return this.engine.dialect.listValue(values);
  }

  /** Bumps the generation of every touched computer (answer caches key on it); the engines call it before COMMIT. */
  async flushGenerations() {
    if (this.touched.size === 0) return;
    // Almost every transaction touches one computer: a plain key lookup then.
    if (this.touched.size === 1) {
      await this.run('UPDATE computer SET generation = generation + 1 WHERE reference = ?', ...this.touched);
      return;
    }
    await this.run(`UPDATE computer SET generation = generation + 1 WHERE ${this.inList('reference')}`, this.list([...this.touched]));
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

  async listSoftwareUrls() {
    const rows = await this.all<{ url: string }>(
      'SELECT url FROM software UNION SELECT software_release AS url FROM computer_partition WHERE software_release IS NOT NULL');
    return rows.map((r) => r.url);
  }
  async renameSoftwareUrl(from: string, to: string) {
    const computers = await this.all<{ computer_reference: string }>(
      'SELECT computer_reference FROM software WHERE url = ? UNION SELECT computer_reference FROM computer_partition WHERE software_release = ?', from, from);
    for (const { computer_reference: computer } of computers) this.touched.add(computer);
    await this.run('UPDATE software SET url = ? WHERE url = ?', to, from);
    await this.run('UPDATE computer_partition SET software_release = ? WHERE software_release = ?', to, from);
  }
  async getSetting(name: string) {
    return (await this.get<{ value: string }>('SELECT value FROM master_setting WHERE name = ?', name))?.value;
  }
  async setSetting(name: string, value: string) {
    await this.run('INSERT INTO master_setting (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value', name, value);
  }

  listSoftware(computer: string) {
    return this.all<SoftwareRow>(`SELECT ${SOFTWARE} FROM software WHERE computer_reference = ? ORDER BY ${this.order}`, computer);
  }
  getSoftware(url: string, computer: string) {
    return this.get<SoftwareRow>(`SELECT ${SOFTWARE} FROM software WHERE url = ? AND computer_reference = ?`, url, computer);
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
    return this.all<PartitionRow>(`SELECT ${PARTITION} FROM computer_partition WHERE computer_reference = ? ORDER BY ${this.order}`, computer);
  }
  listBusyPartitions() {
    return this.all<PartitionRow>(
      `SELECT ${PARTITION} FROM computer_partition WHERE slap_state = 'busy' ORDER BY computer_reference, ${this.order}`,
    );
  }
  getPartition(computer: string, reference: string) {
    return this.get<PartitionRow>(`SELECT ${PARTITION} FROM computer_partition WHERE computer_reference = ? AND reference = ?`, computer, reference);
  }
  findInstance(title: string, requestedBy: string) {
    return this.get<PartitionRow>(
      `SELECT ${PARTITION} FROM computer_partition WHERE slap_state = 'busy' AND partition_reference = ? AND requested_by = ?`,
      title, requestedBy,
    );
  }
  findInstancesByTitle(title: string) {
    return this.all<PartitionRow>(
      `SELECT ${PARTITION} FROM computer_partition WHERE slap_state = 'busy' AND partition_reference = ? ORDER BY computer_reference, ${this.order}`,
      title,
    );
  }
  firstFreePartition(computer: string) {
    return this.get<PartitionRow>(
      `SELECT ${PARTITION} FROM computer_partition WHERE computer_reference = ? AND slap_state = 'free' ORDER BY ${this.order} LIMIT 1`,
      computer,
    );
  }
  listChildren(rootTitle: string) {
    return this.all<PartitionRow>(
      `SELECT ${PARTITION} FROM computer_partition WHERE slap_state = 'busy' AND requested_by = ? ORDER BY computer_reference, ${this.order}`,
      rootTitle,
    );
  }
  async insertPartition(computer: string, reference: string) {
    this.touched.add(computer);
    await this.run('INSERT INTO computer_partition (reference, computer_reference) VALUES (?, ?) ON CONFLICT DO NOTHING', reference, computer);
  }
  async updatePartition(computer: string, reference: string, patch: PartitionPatch) {
    if (Object.keys(patch).some((k) => !REPORT_ONLY.has(k))) this.touched.add(computer);
    const keys = Object.keys(patch).filter((k) => PATCHABLE.has(k));
    if (keys.length === 0) return;
    const values = keys.map((k) => (patch as Record<string, unknown>)[k] ?? null);
    await this.run(
      `UPDATE computer_partition SET ${keys.map((k) => `"${k}" = ?`).join(', ')} WHERE computer_reference = ? AND reference = ?`,
      ...values, computer, reference,
    );
  }
  async deletePartitionsExcept(computer: string, keep: string[]) {
    this.touched.add(computer);
    const list = this.list(keep);
    await this.run(`DELETE FROM shared_instance WHERE computer_reference = ? AND NOT (${this.inList('hosted_by')})`, computer, list);
    await this.run(`DELETE FROM partition_certificate WHERE computer_reference = ? AND NOT (${this.inList('partition_reference')})`, computer, list);
    await this.run(`DELETE FROM related_instance WHERE computer_reference = ? AND NOT (${this.inList('partition_reference')})`, computer, list);
    await this.run(`DELETE FROM computer_partition WHERE computer_reference = ? AND NOT (${this.inList('reference')})`, computer, list);
  }

  listNetwork(computer: string, partition: string) {
    return this.all<NetworkRow>(
      `SELECT ${NETWORK} FROM partition_network WHERE computer_reference = ? AND partition_reference = ? ORDER BY ${this.order}`,
      computer, partition,
    );
  }
  listComputerNetwork(computer: string) {
    return this.all<NetworkRow>(`SELECT ${NETWORK} FROM partition_network WHERE computer_reference = ? ORDER BY ${this.order}`, computer);
  }
  async replaceNetwork(computer: string, rows: NetworkRow[]) {
    this.touched.add(computer);
    await this.run('DELETE FROM partition_network WHERE computer_reference = ?', computer);
    await this.engine.insertMany(
      `INSERT INTO partition_network (${NETWORK})`,
      rows.map((r) => [r.partition_reference, computer, r.reference, r.address, r.netmask]),
    );
  }

  getSlave(computer: string, reference: string) {
    return this.get<SlaveRow>(`SELECT ${SLAVE} FROM shared_instance WHERE computer_reference = ? AND reference = ?`, computer, reference);
  }
  findSlaves(reference: string) {
    return this.all<SlaveRow>(`SELECT ${SLAVE} FROM shared_instance WHERE reference = ? ORDER BY computer_reference`, reference);
  }
  async upsertSlave(row: SlaveRow) {
    await this.run(
      `INSERT INTO shared_instance (${SLAVE}) VALUES (?, ?, ?, ?, ?) ` +
        'ON CONFLICT (reference, computer_reference) DO UPDATE SET connection_xml = excluded.connection_xml, ' +
        'hosted_by = excluded.hosted_by, asked_by = excluded.asked_by',
      row.reference, row.computer_reference, row.connection_xml, row.hosted_by, row.asked_by,
    );
  }

  async insertUsage(computer: string, useString: string, at: number, reportId: string | null) {
    const changes = await this.run(
      'INSERT INTO usage_report (computer_reference, use_string, received_at, report_id) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING',
      computer, useString, at, reportId,
    );
    return changes > 0;
  }
  listUsage(computer: string) {
    return this.all<UsageRow>(`SELECT ${USAGE} FROM usage_report WHERE computer_reference = ? ORDER BY id`, computer);
  }
  latestUsage() {
    return this.all<UsageRow>(
      `SELECT ${USAGE} FROM usage_report WHERE id IN (SELECT max(id) FROM usage_report GROUP BY computer_reference) ORDER BY computer_reference`,
    );
  }

  getCertificate(computer: string, partition: string) {
    return this.get<CertificateRow>(
      `SELECT ${CERTIFICATE} FROM partition_certificate WHERE computer_reference = ? AND partition_reference = ?`, computer, partition,
    );
  }
  async putCertificate(row: CertificateRow) {
    await this.run(
      `INSERT INTO partition_certificate (${CERTIFICATE}) VALUES (?, ?, ?, ?, ?, ?) ` +
        'ON CONFLICT (computer_reference, partition_reference) DO UPDATE SET ' +
        'fingerprint = excluded.fingerprint, certificate = excluded.certificate, key = excluded.key, issued_at = excluded.issued_at',
      row.computer_reference, row.partition_reference, row.fingerprint, row.certificate, row.key, row.issued_at,
    );
  }
  async deleteCertificate(computer: string, partition: string) {
    await this.run('DELETE FROM partition_certificate WHERE computer_reference = ? AND partition_reference = ?', computer, partition);
  }

  async putComputerToken(digest: string, createdBy: string, now: number, expiresAt: number) {
    await this.run('DELETE FROM computer_token WHERE expires_at <= ?', now);
    await this.run('INSERT INTO computer_token (digest, created_by, created_at, expires_at) VALUES (?, ?, ?, ?)', digest, createdBy, now, expiresAt);
  }
  async takeComputerToken(digest: string, now: number) {
    const row = await this.get<{ expires_at: number }>('SELECT expires_at FROM computer_token WHERE digest = ?', digest);
    if (!row) return false;
    await this.run('DELETE FROM computer_token WHERE digest = ?', digest);
    return row.expires_at > now;
  }

  async listRelated(computer: string, partition: string) {
    const rows = await this.all<{ title: string }>(
      'SELECT title FROM related_instance WHERE computer_reference = ? AND partition_reference = ? ORDER BY position', computer, partition,
    );
    return rows.map((r) => r.title);
  }
  async replaceRelated(computer: string, partition: string, titles: string[]) {
    await this.run('DELETE FROM related_instance WHERE computer_reference = ? AND partition_reference = ?', computer, partition);
    await this.engine.insertMany(
      'INSERT INTO related_instance (computer_reference, partition_reference, position, title)',
      titles.map((title, position) => [computer, partition, position, title]),
    );
  }
  listRelatedBy(title: string) {
    return this.all<RelatedRow>(
      'SELECT computer_reference, partition_reference FROM related_instance WHERE title = ? ORDER BY computer_reference, partition_reference', title,
    );
  }

  listShadir(key: string) {
    return this.all<ShadirRow>('SELECT key, metadata, signature, sha512, created_at FROM shadir_entry WHERE key = ? ORDER BY id', key);
  }
  async listShadirBlobs() {
    return (await this.all<{ sha512: string }>('SELECT DISTINCT sha512 FROM shadir_entry')).map((r) => r.sha512);
  }
  async addShadir(row: ShadirRow) {
    const digest = createHash('sha256').update(row.metadata).update('\0').update(row.signature).digest('hex');
    return (await this.run(
      'INSERT INTO shadir_entry (key, digest, metadata, signature, sha512, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key, digest) DO NOTHING',
      row.key, digest, row.metadata, row.signature, row.sha512, row.created_at,
    )) > 0;
  }
  // Usage series and promise results (issue 27; usage-series.ts decides what to write).
  async addSeries(computer: string, writes: ReadonlyArray<SeriesWriteRow>) {
    for (const [sql, params] of seriesUpserts(computer, writes)) await this.run(sql, ...params);
  }
  pruneSeries(resolution: number, before: number) {
    // Naming the resources lets the (resource, resolution, bucket) index find the old rows.
    return this.run(`DELETE FROM usage_series WHERE ${this.inList('resource')} AND resolution = ? AND bucket < ?`,
      this.list(Object.keys(SERIES_RESOURCES)), resolution, before);
  }
  listSeries(resource: string, resolution: number, from: number, to: number, computer?: string) {
    const columns = 'computer_reference, partition_reference, bucket, total, samples, maximum';
    const where = 'resource = ? AND resolution = ? AND bucket >= ? AND bucket < ?';
    return computer === undefined
      ? this.all<SeriesBucketRow>(`SELECT ${columns} FROM usage_series WHERE ${where} ORDER BY bucket`, resource, resolution, from, to)
      : this.all<SeriesBucketRow>(`SELECT ${columns} FROM usage_series WHERE ${where} AND computer_reference = ? ORDER BY bucket`, resource, resolution, from, to, computer);
  }
  async replacePromises(computer: string, partition: string, rows: PromiseRow[]) {
    await this.run('DELETE FROM promise_result WHERE computer_reference = ? AND partition_reference = ?', computer, partition);
    await this.engine.insertMany(
      'INSERT INTO promise_result (computer_reference, partition_reference, name, status, message, checked_at, failing_since)',
      rows.map((r) => [computer, partition, r.name, r.status, r.message, r.checked_at, r.failing_since]),
    );
  }
  listPromises(computer?: string) {
    const columns = 'computer_reference, partition_reference, name, status, message, checked_at, failing_since';
    return computer === undefined
      ? this.all<PromiseRow>(`SELECT ${columns} FROM promise_result ORDER BY computer_reference, partition_reference, name`)
      : this.all<PromiseRow>(`SELECT ${columns} FROM promise_result WHERE computer_reference = ? ORDER BY partition_reference, name`, computer);
  }

  async putHardware(row: HardwareRow) {
    await this.run(
      'INSERT INTO computer_hardware (computer_reference, document, reported_at) VALUES (?, ?, ?) ' +
        'ON CONFLICT (computer_reference) DO UPDATE SET document = excluded.document, reported_at = excluded.reported_at',
      row.computer_reference, row.document, row.reported_at,
    );
  }
  listHardware() {
    return this.all<HardwareRow>('SELECT computer_reference, document, reported_at FROM computer_hardware ORDER BY computer_reference');
  }

  // count(*) is a bigint, which pg returns as a string: cast in SQL.
  async countComputers() {
    return (await this.get<{ n: number }>('SELECT CAST(count(*) AS INTEGER) AS n FROM computer'))?.n ?? 0;
  }
  countPartitions() {
    return this.all<PartitionCount>(
      'SELECT slap_state, requested_state, CAST(count(*) AS INTEGER) AS count FROM computer_partition ' +
        'GROUP BY slap_state, requested_state ORDER BY slap_state, requested_state',
    );
  }
  async countUsage() {
    return (await this.get<{ n: number }>('SELECT CAST(count(*) AS INTEGER) AS n FROM usage_report'))?.n ?? 0;
  }
}
