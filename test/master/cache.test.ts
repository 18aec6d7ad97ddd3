// Cached getFullComputerInformation answers: keyed by the computer's
// generation, bumped by what the node reads back and not by its reports.
import test from 'ava';
import { gunzipSync, gzipSync } from 'node:zlib';
import { request } from 'undici';
import { acceptsGzip, AnswerCache, inflateAnswer } from '../../src/master/answer-cache.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { SlapClient } from '../../src/slap/client.js';
import { startTestMaster } from '../helpers/master.js';
import { computer } from '../helpers/semantics-suite.js';

test('the answer cache serves only the exact generation and evicts the least recently used', (t) => {
  const answer = (c: string) => c.repeat(1000);
  const size = gzipSync(answer('a'), { level: 1 }).length;
  const cache = new AnswerCache(2 * size + 1); // two answers' gzips
  cache.set('a', 1, answer('a'));
  cache.set('b', 1, answer('b'));
  t.is(inflateAnswer(cache.get('a', 1)!).toString(), answer('a'));
  t.is(cache.get('a', 2), undefined, 'another generation is a miss');
  cache.set('c', 1, answer('c'));
  t.is(cache.get('b', 1), undefined, 'b was the least recently used');
  t.is(inflateAnswer(cache.get('a', 1)!).toString(), answer('a'));
  const big = Array.from({ length: 2000 }, (_, i) => String(i * 7919)).join();
  cache.set('big', 1, big);
  t.is(cache.get('big', 1), undefined, 'larger than the budget: not kept');
});

test('Accept-Encoding: gzip is honoured unless refused with q=0', (t) => {
  t.true(acceptsGzip('gzip, deflate'));
  t.true(acceptsGzip('br;q=1.0, gzip;q=0.5'));
  t.true(acceptsGzip('*'));
  t.false(acceptsGzip(undefined));
  t.false(acceptsGzip('identity'));
  t.false(acceptsGzip('gzip;q=0'));
  t.false(acceptsGzip('xgzip'));
});

test('a cached answer goes out gzipped to a client that accepts it, identical once inflated', async (t) => {
  const master = await startTestMaster(t, 'COMP-1');
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer('COMP-1', 2));
  const url = `${master.url}getFullComputerInformation?computer_id=COMP-1`;
  const plain = await (await fetch(url, { headers: { 'accept-encoding': 'identity' } })).text(); // renders and caches
  const cachedPlain = await request(url, { headers: { 'accept-encoding': 'identity' } });
  t.is(cachedPlain.headers['content-encoding'], undefined);
  t.is(await cachedPlain.body.text(), plain);
  const zipped = await request(url, { headers: { 'accept-encoding': 'gzip' } });
  t.is(zipped.headers['content-encoding'], 'gzip');
  t.regex(String(zipped.headers.vary), /accept-encoding/i);
  t.is(gunzipSync(Buffer.from(await zipped.body.arrayBuffer())).toString(), plain);
});

test('writes the node reads back bump the generation; its reports do not', async (t) => {
  const store = new SqliteStore(':memory:');
  t.teardown(() => store.close());
  const generation = () => store.read((tx) => tx.computerGeneration('C'));
  await store.transaction(async (tx) => {
    await tx.upsertComputer({ reference: 'C', address: null, netmask: null });
    await tx.insertPartition('C', 'p0');
  });
  const first = await generation();
  t.is(typeof first, 'number');
  await store.transaction((tx) => tx.updatePartition('C', 'p0', { reported_state: 'started', reported_at: 1 }));
  t.is(await generation(), first);
  await store.transaction((tx) => tx.updatePartition('C', 'p0', { connection_xml: '<instance/>' }));
  t.is(await generation(), (first ?? 0) + 1);
  t.is(await store.read((tx) => tx.computerGeneration('unknown')), undefined);
});

test('a cached answer is replaced as soon as the computer changes', async (t) => {
  const master = await startTestMaster(t, 'COMP-1');
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer('COMP-1', 2));
  const before = await client.getFullComputerInformation('COMP-1');
  t.deepEqual(await client.getFullComputerInformation('COMP-1'), before);
  const inst = await client.requestComputerPartition('/sr', 'x');
  const after = await client.getFullComputerInformation('COMP-1');
  t.is(after.partitions.find((p) => p.partitionId === inst.partitionId)?.parameters?.instance_title, 'x');
  await client.setComputerPartitionConnectionXml('COMP-1', inst.partitionId ?? '', { url: 'u' });
  const again = await client.getFullComputerInformation('COMP-1');
  t.deepEqual(again.partitions.find((p) => p.partitionId === inst.partitionId)?.connectionParameters, { url: 'u' });
});
