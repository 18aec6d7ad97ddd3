// Promise results: the node's status files go to our master with the report
// (sendPromiseResults → POST reportPromiseResults), "failing since" is kept
// while a promise keeps failing, bad input changes nothing, and a master
// without the route (as slapos.core) is skipped without error.
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Fastify from 'fastify';
import { sendPromiseResults, statusDate } from '../../src/accounting/promise-report.js';
import { parsePromiseList, promiseRows } from '../../src/master/promise-results.js';
import { SlapClient } from '../../src/slap/client.js';
import { listenOnLoopback, startTestMaster, tempDir } from '../helpers/master.js';
import { computer } from '../helpers/semantics-suite.js';
import { log } from '../accounting/helpers.js';

const SR = '/opt/sr/trivial/software.cfg';

function writeStatus(root: string, partition: string, title: string, failed: boolean, date: string, message: string) {
  const dir = path.join(root, partition, '.slapgrid', 'promise', 'result');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${title}.status.json`), JSON.stringify({
    title, name: `${title}.py`, path: `/x/${title}.py`, 'execution-time': 0.1, result: { type: 'Test Result', failed, date, message },
  }));
}

test('parsePromiseList refuses what is not a list of promises; promiseRows keeps the first failure time', (t) => {
  t.throws(() => parsePromiseList('{}'), { message: /JSON list/ });
  t.throws(() => parsePromiseList('[{"name": "", "failed": false, "date": 1}]'), { message: /promise_list\[0\]/ });
  const reported = parsePromiseList('[{"name": "a", "failed": true, "message": "down", "date": 200}, {"name": "b", "failed": false, "date": 200}]');
  const previous = [{ computer_reference: 'C', partition_reference: 'p', name: 'a', status: 'failed', message: '', checked_at: 100, failing_since: 50 }];
  t.deepEqual(promiseRows('C', 'p', reported, previous).map((r) => [r.name, r.status, r.failing_since]), [['a', 'failed', 50], ['b', 'ok', null]]);
  t.deepEqual(promiseRows('C', 'p', reported, []).map((r) => r.failing_since), [200, null]);
  t.is(statusDate('2026-01-02T03:04:05+0000', 0), Date.UTC(2026, 0, 2, 3, 4, 5) / 1000);
});

test('the node sends its partitions\' promise results; the master keeps them per partition', async (t) => {
  const master = await startTestMaster(t, 'COMP-1');
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer('COMP-1', 3));
  await client.requestComputerPartition(SR, 'shop');
  const root = tempDir(t);
  writeStatus(root, 'slappart0', 'check-port', true, '2026-01-02T03:04:05+0000', 'port 8080 closed');
  writeStatus(root, 'slappart0', 'check-disk', false, '2026-01-02T03:04:05+0000', '');
  writeStatus(root, 'slappart1', 'free-one', true, '2026-01-02T03:04:05+0000', 'not sent: partition not allocated');
  const sent = await sendPromiseResults(client, 'COMP-1', root, 'slappart', new Set(['slappart0']), log, 0);
  t.deepEqual(sent, { sent: 1, unsupported: false, errors: [] });
  const rows = await master.store.read((tx) => tx.listPromises('COMP-1'));
  t.deepEqual(rows.map((r) => [r.partition_reference, r.name, r.status, r.message]),
    [['slappart0', 'check-disk.py', 'ok', ''], ['slappart0', 'check-port.py', 'failed', 'port 8080 closed']]);
  const fleet = await (await fetch(`${master.url}api/fleet`)).json() as { computers: Array<{ partitions: Array<{ partition: string; health: string }> }> };
  t.is(fleet.computers[0]?.partitions.find((p) => p.partition === 'slappart0')?.health, 'failing');
  const bad = await fetch(`${master.url}reportPromiseResults`, { method: 'POST', body: new URLSearchParams({ computer_id: 'COMP-1', computer_partition_id: 'slappart0', promise_list: '[1]' }) });
  t.is(bad.status, 400);
  t.is((await master.store.read((tx) => tx.listPromises('COMP-1'))).length, 2, 'a refused report changes nothing');
  const free = await fetch(`${master.url}reportPromiseResults`, { method: 'POST', body: new URLSearchParams({ computer_id: 'COMP-1', computer_partition_id: 'slappart2', promise_list: '[]' }) });
  t.is(free.status, 404);
});

test('a master without the route (a stand-in for slapos.core\'s 404) is skipped without error', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  const port = await listenOnLoopback(app);
  const client = new SlapClient(`http://127.0.0.1:${port}/`);
  t.teardown(() => client.close());
  const root = tempDir(t);
  writeStatus(root, 'slappart0', 'check', false, '2026-01-02T03:04:05+0000', '');
  writeStatus(root, 'slappart1', 'check', false, '2026-01-02T03:04:05+0000', '');
  t.deepEqual(await sendPromiseResults(client, 'COMP-1', root, 'slappart', new Set(['slappart0', 'slappart1']), log, 0), { sent: 0, unsupported: true, errors: [] });
});
