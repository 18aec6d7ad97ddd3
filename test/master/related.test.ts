// updateComputerPartitionRelatedInstanceList on our master: what it accepts and
// refuses (the garbage-collection rule itself is in the semantics suite, run on
// SQLite and PostgreSQL), and the recorded posts of the reference node.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { droppedTitles, relatedTitles } from '../../src/master/related-ops.js';
import { SlapClient } from '../../src/slap/client.js';
import { startTestMaster } from '../helpers/master.js';
import { fixturesDir } from '../helpers/paths.js';
import { computer } from '../helpers/semantics-suite.js';

const SR = '/opt/sr/trivial/software.cfg';

interface Exchange { path: string; method: string; request_body: string; form: Record<string, string> | null; status: number }
const recorded = readFileSync(path.join(fixturesDir, 'slap-traffic', '13-related-instances.jsonl'), 'utf8')
  .split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as Exchange)
  .filter((e) => e.path === '/updateComputerPartitionRelatedInstanceList');

test('planner: titles of the posted list and the dropped ones', (t) => {
  t.deepEqual(relatedTitles(['a', '', 'b', 'a']), ['a', 'b']);
  t.throws(() => relatedTitles({ a: 'b' }), { message: /marshalled list of strings/ });
  t.throws(() => relatedTitles(['a', 3]), { message: /marshalled list of strings/ });
  t.throws(() => relatedTitles(['bad\ntitle']), { message: /invalid related instance title/ });
  t.deepEqual(droppedTitles(['a', 'b', 'c'], ['c', 'd']), ['a', 'b']);
  t.deepEqual(droppedTitles([], ['x']), []);
});

test('the reference node\'s recorded posts are accepted and recorded; bad input is refused and changes nothing', async (t) => {
  t.true(recorded.length >= 3, 'the recording has the posts of step 13');
  const master = await startTestMaster(t, 'COMP-REL');
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer('COMP-REL', 3));
  const parent = await client.requestComputerPartition(SR, 'parent0');
  t.is(parent.partitionId, 'slappart0');
  await client.requestComputerPartition(SR, 'child0', { requester: { computerId: 'COMP-REL', partitionId: 'slappart0' } });
  const related = (partition: string) => master.store.read((tx) => tx.listRelated('COMP-REL', partition));
  for (const exchange of recorded) {
    // The reference's proxy answered 404; ours accepts the same bytes.
    t.is(exchange.status, 404);
    const res = await request(`${master.url}updateComputerPartitionRelatedInstanceList`, {
      method: 'POST', body: exchange.request_body, headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    t.is(res.statusCode, 200, await res.body.text());
    const sent = exchange.form?.instance_reference_xml ?? '';
    const partition = exchange.form?.computer_partition_id ?? '';
    t.deepEqual(await related(partition), sent.includes('<string>child0</string>') ? ['child0'] : []);
  }
  t.deepEqual(await related('slappart0'), ['child0']);
  const post = async (form: Record<string, string>) => {
    const res = await request(`${master.url}updateComputerPartitionRelatedInstanceList`, {
      method: 'POST', body: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    return { status: res.statusCode, body: await res.body.text() };
  };
  const base = { computer_id: 'COMP-REL', computer_partition_id: 'slappart0' };
  t.is((await post({ ...base, instance_reference_xml: '<marshal><dictionary id="i2"/></marshal>' })).status, 400);
  t.is((await post({ ...base, instance_reference_xml: 'not xml' })).status, 400);
  t.is((await post(base)).status, 400);
  t.is((await post({ ...base, computer_partition_id: 'slappart2', instance_reference_xml: '<marshal><list id="i2"/></marshal>' })).status, 404, 'a free partition');
  t.is((await post({ ...base, computer_partition_id: 'nope', instance_reference_xml: '<marshal><list id="i2"/></marshal>' })).status, 404);
  t.deepEqual(await related('slappart0'), ['child0'], 'refused posts changed nothing');
  t.is((await client.registerComputerPartition('COMP-REL', 'slappart1')).requestedState, 'started');
});
