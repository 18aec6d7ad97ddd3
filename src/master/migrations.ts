// The master's schema: one migration list for both engines. Append a
// migration, never edit one: each runs once, in its own transaction, and bumps
// the version (SQLite: PRAGMA user_version; PostgreSQL: the schema_version
// table, under an advisory lock so two masters starting at once migrate once).
//
// The texts are portable SQL plus a few tokens, the only places the engines'
// schemas differ (see DDL below): SQLite keeps format order in its implicit
// rowid, PostgreSQL in an identity column `seq`.
import type Database from 'better-sqlite3';
import type pg from 'pg';
import { checkNotNewer as checkSqliteNotNewer, migrateSqlite } from '../util/sqlite.js';

export type Engine = 'sqlite' | 'postgres';

const DDL: Record<Engine, Record<string, string>> = {
  sqlite: { '{seq}': '', '{autoid}': 'INTEGER PRIMARY KEY AUTOINCREMENT', '{, seq}': '', '{without rowid}': ' WITHOUT ROWID' },
  postgres: {
    '{seq}': 'seq BIGINT GENERATED ALWAYS AS IDENTITY,', '{autoid}': 'INTEGER GENERATED ALWAYS AS IDENTITY PRIMARY KEY', '{, seq}': ', seq',
    '{without rowid}': '',
  },
};

const MIGRATIONS: string[] = [
  // 1: the reference's v17 layout (computer, software, partition, slave, partition_network),
  // plus the reports the reference drops (software/partition reported state, usage).
  `
  CREATE TABLE computer (reference TEXT PRIMARY KEY, address TEXT, netmask TEXT);
  CREATE TABLE software (
    {seq}
    url TEXT NOT NULL, computer_reference TEXT NOT NULL,
    requested_state TEXT NOT NULL DEFAULT 'available',
    reported_state TEXT, reported_at DOUBLE PRECISION, error_log TEXT,
    PRIMARY KEY (url, computer_reference));
  CREATE TABLE computer_partition (
    {seq}
    reference TEXT NOT NULL, computer_reference TEXT NOT NULL,
    slap_state TEXT NOT NULL DEFAULT 'free' CHECK (slap_state IN ('free', 'busy')),
    software_release TEXT, xml TEXT, connection_xml TEXT, slave_instance_list TEXT, software_type TEXT,
    partition_reference TEXT, requested_by TEXT NOT NULL DEFAULT '',
    requested_state TEXT NOT NULL DEFAULT 'started', "timestamp" DOUBLE PRECISION,
    reported_state TEXT, reported_at DOUBLE PRECISION, error_log TEXT,
    PRIMARY KEY (reference, computer_reference));
  -- One instance per (title, scope): a second allocation of the same title cannot commit.
  CREATE UNIQUE INDEX computer_partition_instance ON computer_partition (partition_reference, requested_by)
    WHERE slap_state = 'busy';
  CREATE INDEX computer_partition_requested_by ON computer_partition (requested_by);
  CREATE TABLE shared_instance (
    reference TEXT NOT NULL, computer_reference TEXT NOT NULL,
    connection_xml TEXT, hosted_by TEXT, asked_by TEXT,
    PRIMARY KEY (reference, computer_reference));
  CREATE TABLE partition_network (
    {seq}
    partition_reference TEXT NOT NULL, computer_reference TEXT NOT NULL,
    reference TEXT NOT NULL, address TEXT NOT NULL, netmask TEXT);
  CREATE INDEX partition_network_partition ON partition_network (computer_reference, partition_reference);
  CREATE TABLE usage_report (
    id {autoid}, computer_reference TEXT NOT NULL,
    use_string TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL);
  `,
  // 2: per-partition certificates issued by the master's CA (revoked when the partition is freed).
  `
  CREATE TABLE partition_certificate (
    computer_reference TEXT NOT NULL, partition_reference TEXT NOT NULL,
    fingerprint TEXT NOT NULL, certificate TEXT NOT NULL, key TEXT NOT NULL, issued_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (computer_reference, partition_reference));
  CREATE INDEX usage_report_computer ON usage_report (computer_reference, id);
  ALTER TABLE computer ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
  -- getFullComputerInformation reads by computer: without these, a scan of every partition.
  -- (IF NOT EXISTS: PostgreSQL databases of an earlier layout created the first one in migration 1.)
  CREATE INDEX IF NOT EXISTS computer_partition_computer ON computer_partition (computer_reference{, seq});
  CREATE INDEX software_computer ON software (computer_reference{, seq});
  `,
  // 3: the related-instance list each partition last posted (updateComputerPartitionRelatedInstanceList).
  `
  CREATE TABLE related_instance (
    computer_reference TEXT NOT NULL, partition_reference TEXT NOT NULL,
    position INTEGER NOT NULL, title TEXT NOT NULL,
    PRIMARY KEY (computer_reference, partition_reference, title));
  CREATE INDEX related_instance_title ON related_instance (title);
  `,
  // 4: the network cache's shadir (src/master/cache-routes.ts): signed entries per key, in arrival order;
  // digest (sha256 of the entry) makes a repeated upload of one entry a no-op. Blobs are files (cache-storage.ts).
  `
  CREATE TABLE shadir_entry (
    id {autoid}, key TEXT NOT NULL, digest TEXT NOT NULL,
    metadata TEXT NOT NULL, signature TEXT NOT NULL, sha512 TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (key, digest));
  `,
  // (issue 27) usage series from the ingested journals, in three resolutions (usage-series.ts:
  // 0 = the node's report period, 3600 = hourly, 86400 = daily), and each partition's last promise results.
  `
  CREATE TABLE usage_series (
    computer_reference TEXT NOT NULL, partition_reference TEXT NOT NULL, resource TEXT NOT NULL,
    resolution INTEGER NOT NULL, bucket DOUBLE PRECISION NOT NULL,
    total DOUBLE PRECISION NOT NULL, samples INTEGER NOT NULL, maximum DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (computer_reference, partition_reference, resource, resolution, bucket)){without rowid};
  -- Range reads and pruning (which names every resource) both use this one index.
  CREATE INDEX usage_series_range ON usage_series (resource, resolution, bucket);
  CREATE TABLE promise_result (
    computer_reference TEXT NOT NULL, partition_reference TEXT NOT NULL, name TEXT NOT NULL,
    status TEXT NOT NULL, message TEXT NOT NULL, checked_at DOUBLE PRECISION NOT NULL, failing_since DOUBLE PRECISION,
    PRIMARY KEY (computer_reference, partition_reference, name));
  `,
  // (issue 24) one-time computer registration tokens (computer-token.ts): only their SHA-256 is kept.
  `
  CREATE TABLE computer_token (
    digest TEXT PRIMARY KEY, created_by TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL, expires_at DOUBLE PRECISION NOT NULL);
  `,
  // (issue 27) each computer's last hardware status (POST /reportHardwareStatus, src/slap/hardware-report.ts), as JSON.
  `
  CREATE TABLE computer_hardware (
    computer_reference TEXT PRIMARY KEY, document TEXT NOT NULL, reported_at DOUBLE PRECISION NOT NULL);
  `,
  // (issue 24) the master's own settings: local_software_release_root (release-root.ts), as the reference's config table.
  `
  CREATE TABLE master_setting (name TEXT PRIMARY KEY, value TEXT NOT NULL);
  `,
  // (issue 32) the id our nodes stamp on each usage report (useComputer's report_id, which a slapos.core
  // master ignores): a report posted again after a lost acknowledgement is recognised and stored once.
  // Reports without one (other nodes) stay NULL, which the unique index does not compare.
  `
  ALTER TABLE usage_report ADD COLUMN report_id TEXT;
  CREATE UNIQUE INDEX usage_report_once ON usage_report (computer_reference, report_id);
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Migration `version` (0-based) in the engine's DDL. */
export function migrationText(engine: Engine, version: number): string {
  let text = MIGRATIONS[version] ?? '';
  for (const [token, value] of Object.entries(DDL[engine])) text = text.replaceAll(token, value);
  return text;
}

function newerError(current: number): Error {
  return new Error(`database schema version ${current} is newer than this program (${SCHEMA_VERSION}); refusing to open it (nothing was changed)`);
}

/** Refuses a SQLite database written by a newer version of this program (before anything is written to it). */
export function checkNotNewer(db: Database.Database): number {
  return checkSqliteNotNewer(db, SCHEMA_VERSION, 'database');
}

export function migrate(db: Database.Database): void {
  migrateSqlite(db, MIGRATIONS.map((_, version) => migrationText('sqlite', version)), 'database');
}

// Any constant shared by all masters of one database.
const MIGRATION_LOCK = 0x51a905;

export async function migratePg(client: pg.PoolClient): Promise<void> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const { rows } = await client.query<{ version: number }>('SELECT max(version) AS version FROM schema_version');
    const current = rows[0]?.version ?? 0;
    if (current > SCHEMA_VERSION) throw newerError(current);
    for (let version = current; version < SCHEMA_VERSION; version += 1) {
      await client.query('BEGIN');
      try {
        await client.query(migrationText('postgres', version));
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
