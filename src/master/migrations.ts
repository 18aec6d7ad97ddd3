// Versioned schema (PRAGMA user_version). Append a migration, never edit one:
// each runs once, in its own transaction, and bumps the version.
import type Database from 'better-sqlite3';

const MIGRATIONS: string[] = [
  // 1: the reference's v17 layout (computer, software, partition, slave, partition_network),
  // plus the reports the reference drops (software/partition reported state, usage).
  `
  CREATE TABLE computer (reference TEXT PRIMARY KEY, address TEXT, netmask TEXT);
  CREATE TABLE software (
    url TEXT NOT NULL, computer_reference TEXT NOT NULL,
    requested_state TEXT NOT NULL DEFAULT 'available',
    reported_state TEXT, reported_at REAL, error_log TEXT,
    PRIMARY KEY (url, computer_reference));
  CREATE TABLE computer_partition (
    reference TEXT NOT NULL, computer_reference TEXT NOT NULL,
    slap_state TEXT NOT NULL DEFAULT 'free' CHECK (slap_state IN ('free', 'busy')),
    software_release TEXT, xml TEXT, connection_xml TEXT, slave_instance_list TEXT, software_type TEXT,
    partition_reference TEXT, requested_by TEXT NOT NULL DEFAULT '',
    requested_state TEXT NOT NULL DEFAULT 'started', timestamp REAL,
    reported_state TEXT, reported_at REAL, error_log TEXT,
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
    partition_reference TEXT NOT NULL, computer_reference TEXT NOT NULL,
    reference TEXT NOT NULL, address TEXT NOT NULL, netmask TEXT);
  CREATE INDEX partition_network_partition ON partition_network (computer_reference, partition_reference);
  CREATE TABLE usage_report (
    id INTEGER PRIMARY KEY AUTOINCREMENT, computer_reference TEXT NOT NULL,
    use_string TEXT NOT NULL, received_at REAL NOT NULL);
  `,
  // 2: per-partition certificates issued by the master's CA (revoked when the partition is freed).
  `
  CREATE TABLE partition_certificate (
    computer_reference TEXT NOT NULL, partition_reference TEXT NOT NULL,
    fingerprint TEXT NOT NULL, certificate TEXT NOT NULL, key TEXT NOT NULL, issued_at REAL NOT NULL,
    PRIMARY KEY (computer_reference, partition_reference));
  CREATE INDEX usage_report_computer ON usage_report (computer_reference, id);
  ALTER TABLE computer ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
  -- getFullComputerInformation reads by computer: without these, a scan of every partition.
  CREATE INDEX computer_partition_computer ON computer_partition (computer_reference);
  CREATE INDEX software_computer ON software (computer_reference);
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

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Refuses a database written by a newer version of this program (before anything is written to it). */
export function checkNotNewer(db: Database.Database): number {
  const current = Number(db.pragma('user_version', { simple: true }));
  if (current > SCHEMA_VERSION) {
    throw new Error(`database schema version ${current} is newer than this program (${SCHEMA_VERSION}); refusing to open it (nothing was changed)`);
  }
  return current;
}

export function migrate(db: Database.Database): void {
  const current = checkNotNewer(db);
  for (let version = current; version < SCHEMA_VERSION; version += 1) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version] ?? '');
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
}
