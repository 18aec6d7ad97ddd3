// One way to use SQLite (better-sqlite3) for both stores, the master's and the
// node's usage store: files 0600 before the first byte is written, WAL, a
// durability chosen by the caller, and an append-only migration list whose
// position is PRAGMA user_version. Statements are prepared once per connection
// (`StatementCache`): the SQL texts are constants.
import Database from 'better-sqlite3';
import { closeSync, constants, existsSync, fchmodSync, fstatSync, openSync } from 'node:fs';

/**
 * The file and its -wal/-shm are 0600 whatever the umask (created so, and an
 * existing looser mode is tightened with a warning). SQLite gives -wal/-shm
 * the database file's mode.
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

export interface OpenOptions {
  /**
   * FULL: a committed transaction survives power loss (one more fsync per
   * commit). NORMAL (in WAL): it survives a crash of the process, not of the
   * machine. Each store says why it picks one.
   */
  synchronous: 'FULL' | 'NORMAL';
  busyTimeoutMs: number;
  foreignKeys?: boolean;
  warn?: (message: string) => void;
  /** Checked before the first write (the WAL switch): a newer program's database is left untouched. */
  notNewerThan?: { version: number; what: string };
}

/** Opens `file` 0600 (created so) with WAL and the given durability; the caller migrates. */
export function openSqlite(file: string, options: OpenOptions): Database.Database {
  const warn = options.warn ?? ((message: string) => process.emitWarning(message, 'SecurityWarning'));
  const onDisk = file !== ':memory:' && file !== '';
  if (onDisk) secureDatabaseFiles(file, warn, true);
  const db = new Database(file);
  try {
    if (options.notNewerThan) checkNotNewer(db, options.notNewerThan.version, options.notNewerThan.what);
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous}`);
    if (options.foreignKeys) db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
  } catch (error) {
    db.close();
    throw error;
  }
  if (onDisk) secureDatabaseFiles(file, warn, false);
  return db;
}

/** Refuses a database written by a newer version of this program (before anything is written to it). */
export function checkNotNewer(db: Database.Database, latest: number, what: string): number {
  const current = Number(db.pragma('user_version', { simple: true }));
  if (current > latest) {
    throw new Error(`${what} schema version ${current} is newer than this program (${latest}); refusing to open it (nothing was changed)`);
  }
  return current;
}

/**
 * Runs the migrations not yet applied, each in its own IMMEDIATE transaction
 * with the version bump: a crash leaves the database at one version or the next.
 * `migrations[i]` takes the schema from version i to i + 1.
 */
export function migrateSqlite(db: Database.Database, migrations: readonly string[], what: string): void {
  const current = checkNotNewer(db, migrations.length, what);
  for (let version = current; version < migrations.length; version += 1) {
    db.transaction(() => {
      db.exec(migrations[version] as string);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
}

/** Statements prepared once per connection, keyed by their (constant) SQL text. */
export class StatementCache {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  get(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}
