// Starts a real master on loopback (port 0) over a fresh SQLite file; stopped by t.teardown.
import type { ExecutionContext } from 'ava';
import path from 'node:path';
import { pino } from 'pino';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import type { Store } from '../../src/master/store.js';
import { tempDir as systemTempDir } from './system.js';

export interface TestMaster {
  url: string;
  dbFile: string;
  store: Store;
}

/** Opens the store of one test master; SQLite in a temp file unless given. */
export type StoreFactory = (t: ExecutionContext) => Promise<Store>;

/** Temporary directories of master tests (removed at teardown). */
export const tempDir = (t: ExecutionContext): string => systemTempDir(t, 'slapos-master-test-');

export async function startTestMaster(
  t: ExecutionContext, defaultComputer = 'COMP-1234', bodyLimit?: number, openStore?: StoreFactory,
  /** Plain HTTP: the node's instance_root, so that partition users are known by uid (docs/master.md). */
  localPeers?: { instanceRoot: string; computer: string },
  /** The master's JSON log lines (one per request, as `proxy start --log-file` writes them). */
  logFile?: string,
): Promise<TestMaster> {
  const dbFile = openStore ? '' : path.join(tempDir(t), 'proxy.db');
  const store = openStore ? await openStore(t) : new SqliteStore(dbFile);
  const logger = logFile ? pino({ level: 'debug', base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: logFile, sync: true })) : undefined;
  const app = await buildMaster({ store, defaultComputer, ...(bodyLimit ? { bodyLimit } : {}), ...(localPeers ? { localPeers } : {}), ...(logger ? { logger } : {}) });
  t.teardown(() => app.close());
  const port = await listenOnLoopback(app);
  return { url: `http://127.0.0.1:${port}/`, dbFile, store };
}

/** Listens on loopback on a free port; returns the port. */
export async function listenOnLoopback(app: { listen(options: { host: string; port: number }): Promise<unknown>; server: { address(): ReturnType<import('node:net').Server['address']> } }): Promise<number> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  return typeof address === 'object' && address ? address.port : 0;
}
