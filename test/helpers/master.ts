// Starts a real master on loopback (port 0) over a fresh SQLite file; stopped by t.teardown.
import type { ExecutionContext } from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';

export interface TestMaster {
  url: string;
  dbFile: string;
  store: SqliteStore;
}

export function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'slapos-master-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export async function startTestMaster(t: ExecutionContext, defaultComputer = 'COMP-1234', bodyLimit?: number): Promise<TestMaster> {
  const dbFile = path.join(tempDir(t), 'proxy.db');
  const store = new SqliteStore(dbFile);
  const app = await buildMaster({ store, defaultComputer, ...(bodyLimit ? { bodyLimit } : {}) });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/`, dbFile, store };
}
