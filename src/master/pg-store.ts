// PostgreSQL engine of the store (pg; the queries are in sql-store.ts), for several master processes
// on one database. Exactly-once allocation across processes: every write
// transaction first takes one transaction-scoped advisory lock, so writes are
// serialised exactly as on SQLite (a read-then-write such as "first free
// partition" can never interleave), while reads run concurrently on a
// REPEATABLE READ READ ONLY snapshot. The partial unique index on
// (title, scope) stays as a second guard.
import pg from 'pg';
import { migratePg } from './migrations.js';
import { postgresDialect, type SqlEngine, SqlTx } from './sql-store.js';
import type { Store, Tx } from './store.js';

const WRITE_LOCK = 0x51a906;

/** One pooled client inside BEGIN … COMMIT under the shared queries. */
class PgEngine implements SqlEngine {
  readonly dialect = postgresDialect;

  constructor(private readonly client: pg.PoolClient) {}

  all<T>(sql: string, params: unknown[]): Promise<T[]> {
    return this.client.query(text(sql), params).then((r) => r.rows as T[]);
  }
  get<T>(sql: string, params: unknown[]): Promise<T | undefined> {
    return this.all<T>(sql, params).then((rows) => rows[0]);
  }
  run(sql: string, params: unknown[]): Promise<number> {
    return this.client.query(text(sql), params).then((r) => r.rowCount ?? 0);
  }
  async insertMany(head: string, rows: unknown[][]): Promise<void> {
    // One multi-row INSERT per chunk, not one round trip per row (chunks stay far below the 65,535-parameter limit).
    for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
      const chunk = rows.slice(i, i + INSERT_CHUNK);
      let n = 0;
      const values = chunk.map((row) => `(${row.map(() => `$${(n += 1)}`).join(', ')})`).join(', ');
      await this.client.query(`${head} VALUES ${values}`, chunk.flat());
    }
  }
}

const INSERT_CHUNK = 1000;
/** Query texts with `$n` placeholders, converted once per text. */
const texts = new Map<string, string>();
function text(sql: string): string {
  let converted = texts.get(sql);
  if (converted === undefined) {
    converted = postgresDialect.placeholders(sql);
    // updatePartition builds one text per set of patched columns: a bounded number.
    texts.set(sql, converted);
  }
  return converted;
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
        const tx = new SqlTx(new PgEngine(client));
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
