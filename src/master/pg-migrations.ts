// PostgreSQL schema: the same tables as migrations.ts (SQLite), with a `seq`
// identity column standing in for SQLite's rowid (format order). Versions live
// in `schema_version`; an advisory lock keeps two masters starting at once
// from migrating twice.
import type pg from 'pg';

const MIGRATIONS: string[] = [
  `
  CREATE TABLE computer (reference TEXT PRIMARY KEY, address TEXT, netmask TEXT);
  CREATE TABLE software (
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    url TEXT NOT NULL, computer_reference TEXT NOT NULL,
    requested_state TEXT NOT NULL DEFAULT 'available',
    reported_state TEXT, reported_at DOUBLE PRECISION, error_log TEXT,
    PRIMARY KEY (url, computer_reference));
  CREATE TABLE computer_partition (
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    reference TEXT NOT NULL, computer_reference TEXT NOT NULL,
    slap_state TEXT NOT NULL DEFAULT 'free' CHECK (slap_state IN ('free', 'busy')),
    software_release TEXT, xml TEXT, connection_xml TEXT, slave_instance_list TEXT, software_type TEXT,
    partition_reference TEXT, requested_by TEXT NOT NULL DEFAULT '',
    requested_state TEXT NOT NULL DEFAULT 'started', "timestamp" DOUBLE PRECISION,
    reported_state TEXT, reported_at DOUBLE PRECISION, error_log TEXT,
    PRIMARY KEY (reference, computer_reference));
  CREATE UNIQUE INDEX computer_partition_instance ON computer_partition (partition_reference, requested_by)
    WHERE slap_state = 'busy';
  CREATE INDEX computer_partition_requested_by ON computer_partition (requested_by);
  CREATE INDEX computer_partition_computer ON computer_partition (computer_reference, seq);
  CREATE TABLE shared_instance (
    reference TEXT NOT NULL, computer_reference TEXT NOT NULL,
    connection_xml TEXT, hosted_by TEXT, asked_by TEXT,
    PRIMARY KEY (reference, computer_reference));
  CREATE TABLE partition_network (
    seq BIGINT GENERATED ALWAYS AS IDENTITY,
    partition_reference TEXT NOT NULL, computer_reference TEXT NOT NULL,
    reference TEXT NOT NULL, address TEXT NOT NULL, netmask TEXT);
  CREATE INDEX partition_network_partition ON partition_network (computer_reference, partition_reference);
  CREATE TABLE usage_report (
    id INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY, computer_reference TEXT NOT NULL,
    use_string TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL);
  `,
  `
  CREATE TABLE partition_certificate (
    computer_reference TEXT NOT NULL, partition_reference TEXT NOT NULL,
    fingerprint TEXT NOT NULL, certificate TEXT NOT NULL, key TEXT NOT NULL, issued_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (computer_reference, partition_reference));
  CREATE INDEX usage_report_computer ON usage_report (computer_reference, id);
  ALTER TABLE computer ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX software_computer ON software (computer_reference, seq);
  `,
  // 3: the related-instance list each partition last posted (updateComputerPartitionRelatedInstanceList).
  `
  CREATE TABLE related_instance (
    computer_reference TEXT NOT NULL, partition_reference TEXT NOT NULL,
    position INTEGER NOT NULL, title TEXT NOT NULL,
    PRIMARY KEY (computer_reference, partition_reference, title));
  CREATE INDEX related_instance_title ON related_instance (title);
  `,
];

export const PG_SCHEMA_VERSION = MIGRATIONS.length;
// Any constant shared by all masters of one database.
const MIGRATION_LOCK = 0x51a905;

export async function migratePg(client: pg.PoolClient): Promise<void> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT max(version) AS version FROM schema_version');
    const current = rows[0]?.version ?? 0;
    if (current > PG_SCHEMA_VERSION) {
      throw new Error(`database schema version ${current} is newer than this program (${PG_SCHEMA_VERSION})`);
    }
    for (let version = current; version < PG_SCHEMA_VERSION; version += 1) {
      await client.query('BEGIN');
      try {
        await client.query(MIGRATIONS[version] ?? '');
        await client.query('INSERT INTO schema_version (version) VALUES ($1)', [version + 1]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`PostgreSQL migration ${version + 1} failed: ${(error as Error).message}`);
      }
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
  }
}
