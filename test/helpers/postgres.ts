// A throw-away PostgreSQL cluster for tests: initdb into a temp directory,
// `postgres` listening on a unix socket in that directory only (no TCP, no
// system service), run as the `postgres` user when the tests run as root.
// Stopped (fast shutdown) and deleted by the caller's teardown.
import { execa, type ResultPromise } from 'execa';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { recordCreated } from './registry.js';

const BIN_DIRS = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin'];

export const PG_BIN = BIN_DIRS.find((d) => existsSync(path.join(d, 'initdb')) && existsSync(path.join(d, 'postgres')));

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresMissing(): string | undefined {
  if (!PG_BIN) return `PostgreSQL server binaries not found in ${BIN_DIRS.join(', ')} (apt-get install postgresql)`;
  if (process.getuid?.() === 0 && !postgresUser()) return 'running as root but there is no postgres user to run the server';
  return undefined;
}

function postgresUser(): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('postgres:'));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export interface TestPostgres {
  dir: string;
  /** A new empty database; returns its URI. */
  createDatabase(name: string): Promise<string>;
  uri(database: string): string;
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = PG_BIN as string;
  const dir = mkdtempSync(path.join(tmpdir(), 'slapos-pg-'));
  recordCreated('dir', dir);
  const owner = process.getuid?.() === 0 ? postgresUser() : undefined;
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const as = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const data = path.join(dir, 'data');
  await execa(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync'], { ...as, cwd: dir });
  const server: ResultPromise = execa(path.join(bin, 'postgres'), [
    '-D', data, '-k', dir, '-h', '', '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
    '-c', 'max_connections=200', '-c', 'shared_buffers=64MB',
  ], { ...as, cwd: dir, reject: false, all: true });
  const uri = (database: string) => `postgresql://postgres@localhost/${database}?host=${dir}`;
  const stop = async () => {
    // Smart shutdown first (waits for sessions still closing), fast after 5 s.
    if (server.exitCode === null) server.kill('SIGTERM');
    const fast = setTimeout(() => server.kill('SIGINT'), 5000);
    await server;
    clearTimeout(fast);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(uri('postgres'), server);
  } catch (error) {
    await stop();
    throw error;
  }
  // A pool: tests create their databases concurrently.
  const admin = new pg.Pool({ connectionString: uri('postgres'), max: 2 });
  // The cluster is shut down under open connections at the end: that is expected, not an error.
  admin.on('error', () => undefined);
  return {
    dir, uri, stop: async () => {
      await admin.end().catch(() => undefined);
      await stop();
    },
    async createDatabase(name) {
      await admin.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
      return uri(name);
    },
  };
}

async function waitReady(uri: string, server: ResultPromise): Promise<void> {
  let last: unknown;
  for (let i = 0; i < 100; i += 1) {
    if (server.exitCode !== null) throw new Error(`postgres exited: ${String((await server).all).slice(-500)}`);
    const client = new pg.Client({ connectionString: uri });
    try {
      await client.connect();
      await client.end();
      return;
    } catch (error) {
      last = error;
      await client.end().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`postgres did not accept connections: ${String(last)}`);
}
