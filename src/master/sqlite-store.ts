// SQLite engine of the store (better-sqlite3; the queries are in sql-store.ts). WAL + synchronous=FULL:
// an acknowledged write survives kill -9 and power loss. One connection, and an
// in-process queue so that exactly one transaction runs at a time: two requests
// can never pick the same free partition (the reference had no transaction).
import Database from 'better-sqlite3';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { migrate, SCHEMA_VERSION } from './migrations.js';
import { openSqlite, secureDatabaseFiles, StatementCache } from '../util/sqlite.js';
import { importSlapproxyDatabase, type SlapproxyImportReport } from './slapproxy-import.js';
import { type SqlEngine, sqliteDialect, SqlTx } from './sql-store.js';
import type { Store, Tx } from './store.js';
import { SyncTx } from './sqlite-sync.js';

/** better-sqlite3 under the shared queries; statements are prepared once per connection (the SQL texts are constants). */
class SqliteEngine implements SqlEngine {
  readonly dialect = sqliteDialect;
  readonly statements: StatementCache;

  constructor(db: Database.Database) {
    this.statements = new StatementCache(db);
  }

  private prepare(sql: string): Database.Statement {
    return this.statements.get(sql);
  }
  all<T>(sql: string, params: unknown[]): Promise<T[]> {
    return Promise.resolve(this.prepare(sql).all(...params) as T[]);
  }
  get<T>(sql: string, params: unknown[]): Promise<T | undefined> {
    return Promise.resolve(this.prepare(sql).get(...params) as T | undefined);
  }
  run(sql: string, params: unknown[]): Promise<number> {
    return Promise.resolve(this.prepare(sql).run(...params).changes);
  }
  insertMany(head: string, rows: unknown[][]): Promise<void> {
    const first = rows[0];
    if (!first) return Promise.resolve();
    // One prepared single-row INSERT run per row: in-process, so no round trips to save.
    const insert = this.prepare(`${head} VALUES (${first.map(() => '?').join(', ')})`);
    for (const row of rows) insert.run(...row);
    return Promise.resolve();
  }
}

// The database holds partition private keys: 0600 (src/util/sqlite.ts).
export { secureDatabaseFiles } from '../util/sqlite.js';

/** Default warning sink when the master gives none. */
const emitWarning = (message: string) => process.emitWarning(message, 'SecurityWarning');

export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly engine: SqliteEngine;
  private closed = false;
  private syncBody: Database.Transaction<(f: (tx: SyncTx) => unknown) => unknown> | undefined;

  /** Set when this open converted a reference slapproxy database (slapproxy-import.ts). */
  readonly imported: SlapproxyImportReport | undefined;

  private readonly file: string | undefined;

  constructor(file: string, warn: (message: string) => void = emitWarning) {
    const onDisk = file !== ':memory:' && file !== '';
    this.file = onDisk ? path.resolve(file) : undefined;
    if (onDisk) {
      mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
      secureDatabaseFiles(file, warn, true);
    }
    this.imported = onDisk ? importSlapproxyDatabase(file) : undefined;
    // The converted file replaced the original one: as private as it.
    if (this.imported) secureDatabaseFiles(file, () => undefined, false);
    this.db = openSqlite(file, { synchronous: 'FULL', foreignKeys: true, busyTimeoutMs: 5000, warn, notNewerThan: { version: SCHEMA_VERSION, what: 'database' } });
    migrate(this.db);
    this.engine = new SqliteEngine(this.db);
    if (onDisk) secureDatabaseFiles(file, warn, false);
  }

  /** A consistent copy of the database beside it (<file>-backup-<time>.db, 0600: it holds keys); returns its path. */
  backup(): string {
    if (!this.file) throw new Error('an in-memory database has no backup');
    const target = `${this.file}-backup-${new Date().toISOString().replace(/[:.]/g, '-')}.db`;
    // VACUUM INTO fills an empty file: created first, private.
    closeSync(openSync(target, 'wx', 0o600));
    this.db.prepare('VACUUM INTO ?').run(target);
    return target;
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.enqueue('BEGIN IMMEDIATE', fn);
  }

  /** One connection: reads queue like writes (a deferred BEGIN takes no write lock). */
  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.enqueue('BEGIN', fn);
  }

  /**
   * `fn` in one synchronous db.transaction (sqlite-sync.ts): no await inside, so nothing else
   * runs meanwhile. While a promise-wrapped transaction is open it waits its turn in the queue
   * (better-sqlite3 would otherwise nest it as a savepoint of that one).
   */
  runSync<T>(write: boolean, fn: (tx: SyncTx) => T): Promise<T> {
    const now = (): T => {
      if (this.closed) throw new Error('store is closed');
      const body = this.syncBody ??= this.db.transaction((f: (tx: SyncTx) => unknown) => {
        const tx = new SyncTx(this.engine.statements);
        const result = f(tx);
        tx.flushGenerations();
        return result;
      });
      return (write ? body.immediate(fn) : body.deferred(fn)) as T;
    };
    if (!this.db.inTransaction) {
      try {
        return Promise.resolve(now());
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const next = this.queue.then(now, now);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private enqueue<T>(begin: string, fn: (tx: Tx) => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.closed) throw new Error('store is closed');
      this.db.exec(begin);
      try {
        const tx = new SqlTx(this.engine);
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
