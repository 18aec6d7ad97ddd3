// The master without TLS on loopback answers by the kernel-known identity of
// the peer (docs/master.md, "Access by kernel identity"): root everything, a
// partition user only its own partition, any other local user nothing.
import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { procNetEndpoint, uidInTable } from '../../src/master/peer.js';
import { SlapClient } from '../../src/slap/client.js';
import { createUser, isRoot, tempDir, type TestUser } from '../helpers/system.js';
import { listenOnLoopback } from '../helpers/master.js';
import { computer } from '../helpers/semantics-suite.js';

const rootTest = isRoot ? test.serial : test.skip;
const execFileAsync = promisify(execFile);

test('/proc/net/tcp{,6} endpoints and the uid of a row', (t) => {
  t.deepEqual(procNetEndpoint('127.0.0.1', 8080), { table: 'tcp', text: '0100007F:1F90' });
  t.deepEqual(procNetEndpoint('::1', 80), { table: 'tcp6', text: '00000000000000000000000001000000:0050' });
  t.deepEqual(procNetEndpoint('::ffff:127.0.0.1', 80), { table: 'tcp6', text: '0000000000000000FFFF00000100007F:0050' });
  const table = '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n' +
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n' +
    '   1: 0100007F:9C40 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0 20 4 30 10 -1\n';
  t.is(uidInTable(table, '0100007F:9C40', '0100007F:1F90'), 1001);
  t.is(uidInTable(table, '0100007F:9C41', '0100007F:1F90'), undefined);
});

/** GET `url` as `user` (a separate process: its socket is that user's); the HTTP status. Async: the master runs in this process. */
async function statusAs(user: TestUser | undefined, url: string): Promise<number> {
  const code = `fetch(${JSON.stringify(url)}).then((r) => { console.log(r.status); }, (e) => { console.log('error ' + e.message); })`;
  const { stdout } = await execFileAsync(process.execPath, ['-e', code], { encoding: 'utf8', ...(user ? { uid: user.uid, gid: user.gid } : {}), timeout: 20_000 });
  return Number(stdout.trim());
}

rootTest('plain HTTP on loopback: root everything, a partition user its own partition only, another local user nothing', async (t) => {
  const [a, b, stranger] = [createUser(t), createUser(t), createUser(t)];
  const instanceRoot = path.join(tempDir(t), 'srv');
  mkdirSync(instanceRoot);
  chmodSync(path.dirname(instanceRoot), 0o755);
  for (const [id, user] of [['slappart0', a], ['slappart1', b]] as const) {
    mkdirSync(path.join(instanceRoot, id), { mode: 0o750 });
    chownSync(path.join(instanceRoot, id), user.uid, user.gid);
  }
  const store = new SqliteStore(path.join(tempDir(t), 'proxy.db'));
  const app = await buildMaster({ store, defaultComputer: 'COMP-1', localPeers: { instanceRoot, computer: 'COMP-1' } });
  t.teardown(() => app.close());
  const url = `http://127.0.0.1:${await listenOnLoopback(app)}/`;
  // Root (this process) formats the computer.
  const client = new SlapClient(url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer('COMP-1', 2));
  const partition = (id: string) => `${url}registerComputerPartition?computer_reference=COMP-1&computer_partition_reference=${id}`;
  const full = `${url}getFullComputerInformation?computer_id=COMP-1`;
  t.is(await statusAs(undefined, full), 200, 'root: the whole computer');
  t.is(await statusAs(undefined, partition('slappart1')), 200);
  t.is(await statusAs(a, partition('slappart0')), 200, 'a partition user: its own partition');
  t.is(await statusAs(a, partition('slappart1')), 403, 'not another partition');
  t.is(await statusAs(a, full), 403, 'not the whole computer (every partition\'s parameters)');
  t.is(await statusAs(b, partition('slappart0')), 403);
  t.is(await statusAs(stranger, partition('slappart0')), 403, 'another local user: nothing');
  t.is(await statusAs(stranger, `${url}metrics`), 403);
  t.is(await statusAs(a, `${url}status`), 403, 'the status page lists every partition: root only');
});
