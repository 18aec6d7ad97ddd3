// Fixtures of the promise tests: a master that records the requests it
// answered, and a partition directory owned by a fresh system user.
import type { ExecutionContext } from 'ava';
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { SlapClient } from '../../src/slap/client.js';
import { computer } from '../helpers/semantics-suite.js';
import { parsePasswd } from '../../src/users/user.js';
import { tempDir, type TestUser } from '../helpers/system.js';
import { listenOnLoopback } from '../helpers/master.js';

const userByName = (name: string) => parsePasswd(readFileSync('/etc/passwd', 'utf8')).find((e) => e.name === name);

export interface RecordedRequest {
  path: string;
  body: Record<string, unknown>;
}

export interface RecordingMaster {
  url: string;
  requests: RecordedRequest[];
  client: SlapClient;
  /** Requests to this SLAP endpoint (e.g. softwareInstanceBang). */
  calls(endpoint: string): RecordedRequest[];
  /** The partition's timestamp on the master. */
  timestamp(partition: string): Promise<string | undefined>;
}

export const SR = '/opt/sr/trivial/software.cfg';
export const COMPUTER = 'COMP-1234';

/**
 * A real master with `partitions` partitions, the first one allocated (title
 * "inst"). With `instanceRoot`, a local partition user (the owner of a
 * directory there) is known to it by uid, as `slapos proxy start` does for its
 * node (docs/master.md): a promise that bangs as that user is then allowed.
 */
export async function startRecordingMaster(t: ExecutionContext, partitions = 1, instanceRoot?: string): Promise<RecordingMaster> {
  const store = new SqliteStore(path.join(tempDir(t, 'slapos-promise-master-'), 'proxy.db'));
  const app = await buildMaster({ store, defaultComputer: COMPUTER, ...(instanceRoot ? { localPeers: { instanceRoot, computer: COMPUTER } } : {}) });
  const requests: RecordedRequest[] = [];
  app.addHook('preHandler', async (request) => {
    requests.push({ path: request.url.split('?')[0] ?? '', body: (request.body ?? {}) as Record<string, unknown> });
  });
  t.teardown(() => app.close());
  const port = await listenOnLoopback(app);
  const url = `http://127.0.0.1:${port}/`;
  const client = new SlapClient(url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer(COMPUTER, partitions));
  await client.requestComputerPartition(SR, 'inst');
  return {
    url,
    requests,
    client,
    calls: (endpoint) => requests.filter((r) => r.path === `/${endpoint}`),
    timestamp: async (partition) => {
      const value = (await client.registerComputerPartition(COMPUTER, partition)).parameters?.timestamp;
      return value === undefined ? undefined : String(value);
    },
  };
}

export interface TestPartition {
  instanceRoot: string;
  dir: string;
  id: string;
  user: TestUser;
}

/**
 * The partition user of these tests: `nobody`, a real unprivileged user that
 * already exists. Not createUser(): useradd rewrites /etc/passwd, which
 * test/format snapshots while it runs beside these files.
 */
export function partitionUser(): TestUser {
  const entry = userByName('nobody');
  if (!entry) throw new Error('no user nobody in /etc/passwd');
  return { name: entry.name, uid: entry.uid, gid: entry.gid };
}

/** `<tmp>/srv/<id>` owned by the partition user (0750), under directories everyone may traverse. */
export function createPartition(t: ExecutionContext, id = 'slappart0', user: TestUser = partitionUser(), instanceRoot?: string): TestPartition {
  let root = instanceRoot;
  if (!root) {
    const base = tempDir(t, 'slapos-promise-');
    chmodSync(base, 0o755);
    root = path.join(base, 'srv');
    mkdirSync(root, { mode: 0o755 });
  }
  const dir = path.join(root, id);
  mkdirSync(dir, { mode: 0o750 });
  chownSync(dir, user.uid, user.gid);
  return { instanceRoot: root, dir, id, user };
}

/** Writes an executable shell script in the partition (owned by root, readable by all). */
export function writeScript(file: string, body: string): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
}

export async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
