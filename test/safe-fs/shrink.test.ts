// Shrinking partition_amount never removes a partition the master lists as
// busy: the refusal names it and says why (src/format/shrink.ts), from a
// real master's getFullComputerInformation.
import test from 'ava';
import { askMaster, shrinkRefusal } from '../../src/format/shrink.js';
import { SlapClient } from '../../src/slap/client.js';
import { startTestMaster } from '../helpers/master.js';
import { computer } from '../helpers/semantics-suite.js';

const SR = 'http://example.invalid/software.cfg';

test('a partition with an instance on the master is refused, named; free ones may go', async (t) => {
  const master = await startTestMaster(t, 'COMP-1234');
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer('COMP-1234', 4));
  await client.supplySupply(SR, 'COMP-1234');
  const allocated = await client.requestComputerPartition(SR, 'inst0');
  const busyId = allocated.partitionId ?? '';
  t.not(busyId, '');
  const answer = await askMaster(() => client.getFullComputerInformation('COMP-1234'));
  t.false('error' in answer);
  const surplus = ['slappart2', 'slappart3', busyId].filter((v, i, a) => a.indexOf(v) === i);
  const refusal = shrinkRefusal(surplus, 2, answer, false);
  t.truthy(refusal);
  t.regex(refusal!, new RegExp(`master lists ${busyId} as busy`));
  const free = ['slappart0', 'slappart1', 'slappart2', 'slappart3'].filter((p) => p !== busyId);
  t.is(shrinkRefusal(free, 1, answer, false), undefined, 'free partitions are not busy');
  // Even the operator's offline flag does not override a master that answered "busy".
  t.truthy(shrinkRefusal([busyId], 0, answer, true));
});

test('master unreachable: refused unless --allow-offline-shrink; nothing to remove: no question', async (t) => {
  const down = new SlapClient('http://127.0.0.1:9/');
  t.teardown(() => down.close());
  const answer = await askMaster(() => down.getFullComputerInformation('COMP-1234'));
  t.true('error' in answer);
  t.regex(shrinkRefusal(['slappart5'], 5, answer, false) ?? '', /could not say whether slappart5 are in use .*--allow-offline-shrink/);
  t.is(shrinkRefusal(['slappart5'], 5, answer, true), undefined);
  t.is(shrinkRefusal([], 5, answer, false), undefined);
});
