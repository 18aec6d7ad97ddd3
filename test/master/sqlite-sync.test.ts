// The synchronous SQLite path (src/master/sqlite-sync.ts) against the
// promise-wrapped one shared with PostgreSQL (sql-store.ts, node-ops.ts,
// instance-ops.ts): the same requests leave the same rows and give the same
// answers and errors; and a synchronous transaction never runs inside an open
// promise-wrapped one.
import test from 'ava';
import Database from 'better-sqlite3';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { periodJournal } from '../../src/accounting/aggregate.js';
import * as inst from '../../src/master/instance-ops.js';
import * as node from '../../src/master/node-ops.js';
import * as syncOps from '../../src/master/sqlite-sync.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { dumps } from '../../src/slap/marshal-encode.js';
import { tempDir } from '../helpers/master.js';

const settings = { defaultComputer: 'COMP-1' };
const URL = 'https://lab.example.com/software/sync/software.cfg';

/** COMP-1, three partitions, slappart0 allocated, one release supplied. */
async function fleet(file: string): Promise<SqliteStore> {
  const store = new SqliteStore(file);
  await store.transaction(async (tx) => {
    await node.loadComputer(tx, {
      reference: 'COMP-1', address: '10.0.0.1', netmask: '255.255.255.0',
      partition_list: ['slappart0', 'slappart1', 'slappart2'].map((reference, i) => ({
        reference, tap: { name: `slaptap${i}` }, address_list: [{ addr: `10.0.0.${i + 2}`, netmask: '255.255.255.0' }],
      })),
    });
    await node.supply(tx, settings, URL, 'COMP-1', 'available');
    await tx.updatePartition('COMP-1', 'slappart0', {
      slap_state: 'busy', software_release: URL, software_type: 'default', partition_reference: 'inst', requested_by: '', requested_state: 'started', timestamp: 1,
    });
  });
  return store;
}

const journal = (report: number) => {
  const start = Math.floor(Date.now() / 1000 / 3600) * 3600 - 3600;
  return periodJournal('COMP-1', start, start + 60, [{
    partition: 'slappart0', samples: 1, cpuSeconds: 30 + report, ioReadBytes: 0, ioWriteBytes: 0, netInBytes: 0, netOutBytes: 0, netInPackets: 0,
    netOutPackets: 0, memoryMeanBytes: 2 ** 20, memoryPeakBytes: null, pidsMean: null, diskMeanBytes: null,
  }]) as string;
};

/** Every row a node's requests write, times left out (they are the clock's). */
function rows(file: string): unknown {
  const db = new Database(file, { readonly: true });
  try {
    const all = (sql: string) => db.prepare(sql).all();
    return {
      computer: all('SELECT reference, generation FROM computer ORDER BY reference'),
      partition: all('SELECT reference, slap_state, connection_xml, reported_state, error_log, reported_at IS NOT NULL AS reported FROM computer_partition ORDER BY rowid'),
      software: all('SELECT url, requested_state, reported_state, error_log, reported_at IS NOT NULL AS reported FROM software ORDER BY rowid'),
      usage: all('SELECT computer_reference, use_string, report_id FROM usage_report ORDER BY id'),
      series: all('SELECT computer_reference, partition_reference, resource, resolution, bucket, total, samples, maximum FROM usage_series ORDER BY 1, 2, 3, 4, 5'),
    };
  } finally {
    db.close();
  }
}

/** The outcome of a request: its value, or its error's status and message. */
async function outcome(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return { value: await run() };
  } catch (error) {
    return { status: (error as { status?: number }).status, message: (error as Error).message };
  }
}

test('the synchronous path leaves the rows, answers and errors of the promise-wrapped one', async (t) => {
  const dir = tempDir(t);
  const a = await fleet(path.join(dir, 'sync.db'));
  const b = await fleet(path.join(dir, 'async.db'));
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const big = { blob: 'x'.repeat(2 * 1024 * 1024) };
  // [synchronous on a, promise-wrapped on b]: reports, publications, journals, and refusals of each kind.
  const steps: Array<[() => Promise<unknown>, () => Promise<unknown>]> = [
    [() => a.runSync(true, (x) => syncOps.reportPartition(x, 'COMP-1', 'slappart0', 'started', null)),
      () => b.transaction((x) => node.reportPartition(x, 'COMP-1', 'slappart0', 'started', null))],
    [() => a.runSync(true, (x) => syncOps.reportPartition(x, 'COMP-1', 'slappart1', 'error', 'boom')),
      () => b.transaction((x) => node.reportPartition(x, 'COMP-1', 'slappart1', 'error', 'boom'))],
    [() => a.runSync(true, (x) => syncOps.reportPartition(x, 'COMP-1', 'slappart9', 'started', null)),
      () => b.transaction((x) => node.reportPartition(x, 'COMP-1', 'slappart9', 'started', null))],
    [() => a.runSync(true, (x) => syncOps.setConnection(x, 'COMP-1', 'slappart0', { url: 'http://[fd00::1]:80/' })),
      () => b.transaction((x) => inst.setConnection(x, 'COMP-1', 'slappart0', { url: 'http://[fd00::1]:80/' }, null))],
    [() => a.runSync(true, (x) => syncOps.setConnection(x, 'COMP-1', 'slappart0', big)),
      () => b.transaction((x) => inst.setConnection(x, 'COMP-1', 'slappart0', big, null))],
    [() => a.runSync(true, (x) => syncOps.reportSoftware(x, URL, 'COMP-1', 'available', null)),
      () => b.transaction((x) => node.reportSoftware(x, URL, 'COMP-1', 'available', null))],
    [() => a.runSync(true, (x) => syncOps.storeUsage(x, 'COMP-1', journal(1), 'r1')),
      () => b.transaction((x) => node.storeUsage(x, 'COMP-1', journal(1), 'r1'))],
    [() => a.runSync(true, (x) => syncOps.storeUsage(x, 'COMP-1', journal(1), 'r1')),
      () => b.transaction((x) => node.storeUsage(x, 'COMP-1', journal(1), 'r1'))],
    [() => a.runSync(true, (x) => syncOps.storeUsage(x, 'COMP-1', journal(2), null)),
      () => b.transaction((x) => node.storeUsage(x, 'COMP-1', journal(2), null))],
    [() => a.runSync(true, (x) => syncOps.storeUsage(x, 'COMP-1', '<nope/>', null)),
      () => b.transaction((x) => node.storeUsage(x, 'COMP-1', '<nope/>', null))],
    [() => a.runSync(true, (x) => syncOps.storeUsage(x, 'COMP-9', journal(3), null)),
      () => b.transaction((x) => node.storeUsage(x, 'COMP-9', journal(3), null))],
    [() => a.runSync(false, (x) => dumps(syncOps.computerInformation(x, settings, 'COMP-1'))),
      () => b.read(async (x) => dumps(await node.computerInformation(x, settings, 'COMP-1')))],
    [() => a.runSync(false, (x) => dumps(syncOps.computerInformation(x, settings, 'COMP-9'))),
      () => b.read(async (x) => dumps(await node.computerInformation(x, settings, 'COMP-9')))],
    [() => a.runSync(false, (x) => x.computerGeneration('COMP-1')), () => b.read((x) => x.computerGeneration('COMP-1'))],
  ];
  for (const [i, [sync, wrapped]] of steps.entries()) t.deepEqual(await outcome(sync), await outcome(wrapped), `step ${i}`);
  t.deepEqual(rows(path.join(dir, 'sync.db')), rows(path.join(dir, 'async.db')));
  const after = rows(path.join(dir, 'sync.db')) as { series: unknown[]; usage: unknown[] };
  t.is(after.usage.length, 2, 'the journal sent twice with its id was stored once');
  t.true(after.series.length > 0);
});

test('a synchronous transaction waits for an open promise-wrapped one instead of nesting in it', async (t) => {
  const file = path.join(tempDir(t), 'queue.db');
  const store = await fleet(file);
  t.teardown(() => store.close());
  const order: string[] = [];
  // Held open across a real timer, then rolled back: a write nested in it would be rolled back with it.
  const held = store.transaction(async (tx) => {
    await tx.updatePartition('COMP-1', 'slappart1', { error_log: 'rolled back' });
    await sleep(50);
    order.push('async');
    throw new Error('abort');
  });
  await sleep(0);
  const sync = store.runSync(true, (tx) => {
    order.push('sync');
    syncOps.reportPartition(tx, 'COMP-1', 'slappart2', 'started', null);
  });
  await t.throwsAsync(held, { message: 'abort' });
  await sync;
  t.deepEqual(order, ['async', 'sync']);
  const partitions = (rows(file) as { partition: Array<{ reference: string; error_log: string | null; reported_state: string | null }> }).partition;
  t.is(partitions.find((p) => p.reference === 'slappart1')?.error_log, null);
  t.is(partitions.find((p) => p.reference === 'slappart2')?.reported_state, 'started');
});

test('a synchronous transaction that throws changes nothing', async (t) => {
  const file = path.join(tempDir(t), 'rollback.db');
  const store = await fleet(file);
  t.teardown(() => store.close());
  const before = rows(file);
  await t.throwsAsync(store.runSync(true, (tx) => {
    syncOps.reportPartition(tx, 'COMP-1', 'slappart0', 'stopped', null);
    tx.updatePartition('COMP-1', 'slappart0', { connection_xml: 'x' });
    throw new Error('late failure');
  }), { message: 'late failure' });
  t.deepEqual(rows(file), before);
  t.is(await store.runSync(false, (tx) => tx.getPartition('COMP-1', 'slappart0')?.reported_state), null, 'the store is still usable');
});
