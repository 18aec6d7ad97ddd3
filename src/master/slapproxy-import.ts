// Opening a database written by the reference's slapproxy (slapos.core, schema
// version 17: tables `computer17`, `partition17`, …, no user_version). The
// reference tells its schema version by the numeric suffix of every table name;
// we read those tables and carry every row into our own schema.
//
// Crash safety: the original file is never written. We (1) copy it to a backup
// beside it, (2) build the new database in a temporary file (our schema, then
// every row in one transaction), (3) fsync it and rename it over the original.
// A kill -9 at any point leaves either the untouched original (plus, at worst, a
// stale temporary file and lock that the next start removes) or the complete new
// database: never a mix. A lock file keeps a second process from converting (or
// removing the temporary file) at the same time.
import { killPoint } from '../util/kill-point.js';
import Database from 'better-sqlite3';
import {
  closeSync, copyFileSync, constants, existsSync, fchownSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync,
} from 'node:fs';
import path from 'node:path';
import { migrate } from './migrations.js';
import { fsyncPath } from '../util/fsync.js';

/** The only reference schema version we read (slapos.core 1.24: `--version:17` in slapos/proxy/schema.sql). */
export const SLAPPROXY_SCHEMA_VERSION = 17;

/** Table base names of the reference's schema; their suffix is the schema version. */
const LEGACY_TABLES = ['computer', 'software', 'partition', 'slave', 'partition_network', 'config', 'forwarded_partition_request'];
const LEGACY_NAME = /^([a-z_]+?)(\d+)$/;

export interface SlapproxyImportReport {
  file: string;
  fromVersion: number;
  backup: string;
  /** Rows carried per reference table (`computer17` → 2, …). */
  carried: Record<string, number>;
  /** Rows that have no place in our schema, kept only in the backup (table → count). */
  notCarried: Record<string, number>;
  /** Shared-instance rows dropped because a later row has the same (reference, computer). */
  duplicateSlaves: number;
}

export class SlapproxyImportError extends Error {}

/**
 * The step boundaries of the conversion, for the kill hook (SLAPOS_TEST_KILL_AT=
 * slapproxy-import:<step>, src/util/kill-point.ts) and docs/design.md: the
 * lock taken, the backup durable, the temporary file created, its schema
 * made, its rows copied (inside the copy transaction), it durable, renamed.
 */
export const SLAPPROXY_IMPORT_KILL_POINTS = ['locked', 'backup', 'temp-created', 'schema', 'rows', 'before-rename', 'after-rename'].map((step) => `slapproxy-import:${step}`);

function testKillPoint(step: string): void {
  killPoint(`slapproxy-import:${step}`);
}

function tableNames(db: Database.Database): string[] {
  return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name);
}

/** The reference schema versions present (suffixes of its table names), empty for a database of ours. */
export function legacyVersions(names: string[]): Set<number> {
  const versions = new Set<number>();
  for (const name of names) {
    const match = LEGACY_NAME.exec(name);
    if (match && LEGACY_TABLES.includes(match[1] as string)) versions.add(Number(match[2]));
  }
  return versions;
}

function count(db: Database.Database, table: string): number {
  return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}

/** Which temporary file an import builds (removed at the next start if a crash left it). */
export function importTempFile(file: string): string {
  return `${file}.slapproxy-import.tmp`;
}

function removeTemp(temp: string): void {
  for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(temp + suffix, { force: true });
}

/**
 * If `file` is a reference slapproxy database, converts it in place (backup first)
 * and returns what was done; returns undefined for anything else (a missing or
 * empty file, a database of ours). Throws SlapproxyImportError, changing nothing,
 * for a reference database we cannot read (newer or older schema, data of ours beside it).
 */
export function importSlapproxyDatabase(file: string, now: Date = new Date()): SlapproxyImportReport | undefined {
  clearStaleConversion(file);
  if (!existsSync(file) || statSync(file).size === 0) return undefined;
  if (probe(file).versions.size === 0) return undefined;
  // One converter at a time: a second master started meanwhile waits for nothing and is refused.
  const unlock = takeLock(file);
  try {
    return convert(file, now);
  } finally {
    unlock();
  }
}

interface Probe {
  versions: Set<number>;
  /** Computers and partitions in tables of ours. */
  ourRows: number;
}

/** Reads the table names; opening may roll back a hot journal (SQLite's own recovery), nothing else is written. */
function probe(file: string): Probe {
  const db = new Database(file, { fileMustExist: true });
  try {
    const names = tableNames(db);
    let ourRows = 0;
    if (names.includes('computer')) ourRows += count(db, 'computer');
    if (names.includes('computer_partition')) ourRows += count(db, 'computer_partition');
    return { versions: legacyVersions(names), ourRows };
  } finally {
    db.close();
  }
}

/** The lock file of a conversion, holding the converter's pid. */
export function importLockFile(file: string): string {
  return `${file}.slapproxy-import.lock`;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function lockHolder(lock: string): number {
  try {
    return Number(readFileSync(lock, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

/** A conversion killed after its rename leaves its lock (and nothing else): removed once its process is gone. */
function clearStaleConversion(file: string): void {
  const lock = importLockFile(file);
  if (!existsSync(lock)) return;
  const holder = lockHolder(lock);
  if (holder > 0 && holder !== process.pid && isAlive(holder)) return;
  removeTemp(importTempFile(file));
  rmSync(lock, { force: true });
}

/** O_EXCL lock file; a lock whose process is gone (kill -9 during a conversion) is taken over. */
function takeLock(file: string): () => void {
  const lock = importLockFile(file);
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const fd = openSync(lock, 'wx', 0o600);
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      return () => rmSync(lock, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = lockHolder(lock);
      if (holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw new SlapproxyImportError(`${file}: process ${holder} is converting this slapproxy database (${lock}); nothing was changed`);
      }
      rmSync(lock, { force: true });
    }
  }
  throw new SlapproxyImportError(`${file}: cannot take the conversion lock ${lock}`);
}

/** Under the lock: checks, backup, build, rename. */
function convert(file: string, now: Date): SlapproxyImportReport | undefined {
  // What a crashed conversion left; never the live database.
  const temp = importTempFile(file);
  testKillPoint('locked');
  removeTemp(temp);
  // Another process may have converted it while we waited for the lock.
  const { versions, ourRows } = probe(file);
  if (versions.size === 0) return undefined;
  const listed = [...versions].sort((a, b) => a - b).join(', ');
  const newest = Math.max(...versions);
  if (newest > SLAPPROXY_SCHEMA_VERSION) {
    throw new SlapproxyImportError(
      `${file}: slapproxy database schema version ${newest} is newer than this program understands ` +
        `(${SLAPPROXY_SCHEMA_VERSION}); refusing to open it (nothing was changed)`,
    );
  }
  if (versions.size !== 1 || newest !== SLAPPROXY_SCHEMA_VERSION) {
    throw new SlapproxyImportError(
      `${file}: slapproxy database schema version(s) ${listed}; only version ${SLAPPROXY_SCHEMA_VERSION} ` +
        `(slapos.core 1.24) can be imported: start the reference proxy on it once to upgrade it (nothing was changed)`,
    );
  }
  if (ourRows > 0) {
    throw new SlapproxyImportError(
      `${file}: holds both slapproxy tables (version ${newest}) and data of ours; refusing to merge them (nothing was changed)`,
    );
  }
  if (existsSync(`${file}-wal`) && statSync(`${file}-wal`).size > 0) {
    throw new SlapproxyImportError(`${file}: a write-ahead log ${file}-wal is still present; open the database once with sqlite3 (nothing was changed)`);
  }
  const v = SLAPPROXY_SCHEMA_VERSION;
  const original = statSync(file);

  // 1. Backup, same mode and owner, durable before anything else happens.
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  const backup = `${file}-backup-slapproxy-v${v}-${stamp}.db`;
  copyFileSync(file, backup, constants.COPYFILE_EXCL);
  const backupFd = openSync(backup, 'r');
  try {
    if (process.getuid?.() === 0) fchownSync(backupFd, original.uid, original.gid);
    fsyncSync(backupFd);
  } finally {
    closeSync(backupFd);
  }
  fsyncPath(path.dirname(path.resolve(file)));
  testKillPoint('backup');

  // 2. The new database in a temporary file: same mode and owner as the original.
  closeSync(openSync(temp, 'wx', original.mode & 0o777));
  if (process.getuid?.() === 0) {
    const fd = openSync(temp, 'r');
    try {
      fchownSync(fd, original.uid, original.gid);
    } finally {
      closeSync(fd);
    }
  }
  testKillPoint('temp-created');
  const carried: Record<string, number> = {};
  const notCarried: Record<string, number> = {};
  let duplicateSlaves = 0;
  const db = new Database(temp);
  try {
    db.pragma('journal_mode = DELETE');
    db.pragma('synchronous = FULL');
    migrate(db);
    testKillPoint('schema');
    db.prepare('ATTACH DATABASE ? AS legacy').run(file);
    const legacyNames = new Set(
      (db.prepare("SELECT name FROM legacy.sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name),
    );
    const has = (base: string): boolean => legacyNames.has(`${base}${v}`);
    for (const base of ['computer', 'software', 'partition', 'slave', 'partition_network']) {
      if (!has(base)) throw new SlapproxyImportError(`${file}: slapproxy table ${base}${v} is missing (nothing was changed)`);
    }
    db.transaction(() => {
      // rowid order is kept: partitions and software are listed in that order.
      db.exec(`
        INSERT INTO computer (reference, address, netmask)
          SELECT reference, address, netmask FROM legacy.computer${v} ORDER BY rowid;
        INSERT INTO software (url, computer_reference, requested_state)
          SELECT url, computer_reference, coalesce(requested_state, 'available') FROM legacy.software${v} ORDER BY rowid;
        INSERT INTO computer_partition (reference, computer_reference, slap_state, software_release, xml, connection_xml,
            slave_instance_list, software_type, partition_reference, requested_by, requested_state, timestamp)
          SELECT reference, computer_reference, coalesce(slap_state, 'free'), software_release, xml, connection_xml,
            slave_instance_list, software_type, partition_reference, coalesce(requested_by, ''),
            coalesce(requested_state, 'started'), timestamp
          FROM legacy.partition${v} ORDER BY rowid;
        INSERT OR REPLACE INTO shared_instance (reference, computer_reference, connection_xml, hosted_by, asked_by)
          SELECT reference, computer_reference, connection_xml, hosted_by, asked_by FROM legacy.slave${v} ORDER BY rowid;
        INSERT INTO partition_network (partition_reference, computer_reference, reference, address, netmask)
          SELECT partition_reference, computer_reference, reference, address, netmask
          FROM legacy.partition_network${v} ORDER BY rowid;
      `);
      const pairs: [string, string][] = [
        ['computer', 'computer'], ['software', 'software'], ['partition', 'computer_partition'],
        ['slave', 'shared_instance'], ['partition_network', 'partition_network'],
      ];
      for (const [base, ours] of pairs) {
        const legacyCount = count(db, `legacy.${base}${v}`);
        const ourCount = count(db, ours);
        if (base === 'slave') duplicateSlaves = legacyCount - ourCount;
        else if (legacyCount !== ourCount) {
          throw new SlapproxyImportError(`${file}: ${base}${v} has ${legacyCount} rows but ${ourCount} were carried (nothing was changed)`);
        }
        carried[`${base}${v}`] = legacyCount;
      }
      // The release root the reference last ran with (release-root.ts): the next start rebases from it.
      let rootCarried = 0;
      if (has('config')) {
        rootCarried = db.prepare(`INSERT INTO master_setting (name, value) SELECT name, value FROM legacy.config${v} ` +
          "WHERE name = 'local_software_release_root' AND value IS NOT NULL").run().changes;
        if (rootCarried > 0) carried[`config${v}`] = rootCarried;
      }
      for (const base of ['config', 'forwarded_partition_request']) {
        if (has(base)) {
          const n = count(db, `legacy.${base}${v}`) - (base === 'config' ? rootCarried : 0);
          if (n > 0) notCarried[`${base}${v}`] = n;
        }
      }
      testKillPoint('rows');
    })(); // deferred: only the temporary file is ever write-locked, the original is only read
    db.exec('DETACH DATABASE legacy');
  } catch (error) {
    db.close();
    removeTemp(temp);
    rmSync(backup, { force: true });
    if (error instanceof SlapproxyImportError) throw error;
    throw new SlapproxyImportError(`${file}: importing the slapproxy database failed (nothing was changed): ${(error as Error).message}`);
  }
  db.close();
  fsyncPath(temp);
  testKillPoint('before-rename');

  // 3. Atomic switch.
  renameSync(temp, file);
  fsyncPath(path.dirname(path.resolve(file)));
  testKillPoint('after-rename');
  return { file, fromVersion: v, backup, carried, notCarried, duplicateSlaves };
}

/** One line for the start-up log. */
export function describeImport(report: SlapproxyImportReport): string {
  const carried = Object.entries(report.carried).map(([table, n]) => `${table}: ${n}`).join(', ');
  const dropped = Object.entries(report.notCarried).map(([table, n]) => `${table}: ${n}`).join(', ');
  return (
    `imported slapproxy database ${report.file} (schema version ${report.fromVersion}): ${carried}` +
    (report.duplicateSlaves ? `; ${report.duplicateSlaves} duplicate shared-instance rows merged` : '') +
    (dropped ? `; not carried (kept in the backup only): ${dropped}` : '') +
    `; original saved as ${report.backup}` +
    // Our tables have no "17" suffix: the reference's `slapos proxy show` (and its proxy) cannot read the new file.
    ` (the reference's \`slapos proxy show\` and \`slapos proxy start\` cannot read the converted file: use ours, or the backup with theirs)`
  );
}
