// The master under attack (issue 15) on SQLite; the same suite runs on PostgreSQL in postgres.test.ts.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REQUEST_XML_LIMITS } from '../../src/master/limits.js';
import * as node from '../../src/master/node-ops.js';
import { SlapClient } from '../../src/slap/client.js';
import { dumps } from '../../src/slap/marshal-encode.js';
import { loads } from '../../src/slap/marshal-decode.js';
import { isRecord, type PyRecord } from '../../src/slap/pyvalue.js';
import { startTestMaster } from '../helpers/master.js';
import { fixturesDir } from '../helpers/paths.js';
import { call, defineAttacks } from '../helpers/attack-suite.js';

defineAttacks('');

// The budgets measured against the largest legitimate documents (numbers in docs/master.md, "Limits").

/** The recorded slapos node format (test/fixtures/slap-traffic/01-format.jsonl), grown to `n` partitions. */
function recordedFormat(n: number): PyRecord {
  const line = readFileSync(path.join(fixturesDir, 'slap-traffic', '01-format.jsonl'), 'utf8').split('\n')
    .find((l) => l.includes('"/loadComputerConfigurationFromXML"'));
  const recorded = loads((JSON.parse(line ?? '{}') as { form: { xml: string } }).form.xml) as PyRecord;
  const template = JSON.stringify((recorded.partition_list as PyRecord[])[0]);
  const partitions = Array.from({ length: n }, (_, i) => JSON.parse(template.replace(/slappart0/g, `slappart${i}`)
    .replace(/captap0/g, `captap${i}`).replace(/capuser0/g, `capuser${i}`).replace(/fd00:9::2"/g, `fd00:9::${(i + 2).toString(16)}"`)) as PyRecord);
  return { ...recorded, reference: 'COMP-1234', partition_list: partitions };
}

test('the largest legitimate documents fit the budgets with room to spare', async (t) => {
  const format = dumps(recordedFormat(300));
  const elements = format.match(/<[^/]/g)?.length ?? 0;
  t.log(`300-partition format: ${format.length} bytes, ${elements} values (request budget ${REQUEST_XML_LIMITS.maxElements})`);
  t.true(elements * 5 < REQUEST_XML_LIMITS.maxElements, '5× margin');
  t.true(isRecord(loads(format, REQUEST_XML_LIMITS)));

  const master = await startTestMaster(t);
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  const formatted = await call(master.url, 'POST', 'loadComputerConfigurationFromXML', { xml: format });
  t.is(formatted.status, 200, formatted.body);
  // Every partition: 2 KB of parameters, 8 KB of connection parameters (certificates, URLs, passwords);
  // one frontend host with 200 shared instances of 1 KB parameters each.
  const kb = (n: number, seed: string) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${seed}-${i}`, `${'x'.repeat(1000)}&<é`]));
  const started = performance.now();
  for (let i = 0; i < 300; i += 1) {
    const inst = await client.requestComputerPartition(i === 0 ? '/sr/frontend' : '/sr/app', `inst${i}`, { parameters: kb(2, 'p') });
    await client.setComputerPartitionConnectionXml('COMP-1234', inst.partitionId ?? '', kb(8, 'c'));
  }
  for (let i = 0; i < 200; i += 1) await client.requestComputerPartition('/sr/frontend', `front${i}`, { shared: true, parameters: kb(1, 's') });
  const perWrite = (performance.now() - started) / 800;
  const answer = (await call(master.url, 'GET', 'getFullComputerInformation', { computer_id: 'COMP-1234' })).body;
  const bound = await master.store.read((tx) => node.answerBound(tx, 'COMP-1234'));
  t.log(`answer ${answer.length} bytes (bound ${bound.bytes}, node limit 16777216), ${answer.match(/<[^/]/g)?.length} elements (bound ${bound.elements}), ${perWrite.toFixed(1)} ms per write`);
  t.true(bound.bytes < 16 * 1024 * 1024, 'servable');
  t.is((await client.getFullComputerInformation('COMP-1234')).partitions.length, 300, 'and a node reads it');
});
