// The web view's data and JSON API cut to the caller: a partition sees its
// own partition only, a computer its computer, a user everything; secrets
// masked for anonymous callers always, for others unless asked. Bad queries
// are 400 with the reason.
import test from 'ava';
import { gatherFleet, gatherInstances, gatherUsage, MASK, parseScope } from '../../src/master/web/fleet-data.js';
import { fillSmallFleet, webMaster } from '../helpers/web-fleet.js';

async function setup(t: Parameters<typeof webMaster>[0]) {
  const { master, client } = await webMaster(t);
  await fillSmallFleet({ user: client, computer: () => client });
  return { master, client };
}

test('a partition sees its own partition; a computer its computer; a user everything', async (t) => {
  const { master } = await setup(t);
  const read = <T>(fn: Parameters<typeof master.store.read<T>>[0]) => master.store.read(fn);
  const user = { secrets: true, who: 'user u' };
  const part = { computer: 'COMP-1', partition: 'slappart1', secrets: true, who: 'partition' };
  const comp = { computer: 'COMP-2', secrets: true, who: 'computer' };
  t.deepEqual((await read((tx) => gatherFleet(tx, user))).map((c) => [c.computer, c.partitions.length, c.software.length]), [['COMP-1', 3, 1], ['COMP-2', 1, 0]]);
  const own = await read((tx) => gatherFleet(tx, part));
  t.deepEqual(own.map((c) => [c.computer, c.partitions.map((p) => p.partition), c.software.length]), [['COMP-1', ['slappart1'], 0]]);
  t.deepEqual((await read((tx) => gatherFleet(tx, comp))).map((c) => c.computer), ['COMP-2']);
  t.deepEqual((await read((tx) => gatherFleet(tx, user))).map((c) => c.hardware?.hostname ?? null), ['node-1', null], 'the hardware status of the computer that sent one');
  t.is(own[0]?.hardware, null, 'a partition sees its partition only, not its host');
  t.deepEqual((await read((tx) => gatherInstances(tx, part, false))).map((i) => i.title), ['b']);
  const now = Date.now() / 1000;
  const fleetMemory = await read((tx) => gatherUsage(tx, user, { kind: 'fleet' }, 'service_module/memory_used', 'hour', now));
  t.deepEqual(fleetMemory.values, [150]);
  const partMemory = await read((tx) => gatherUsage(tx, part, { kind: 'fleet' }, 'service_module/memory_used', 'hour', now));
  t.deepEqual([partMemory.values, partMemory.parts.map((p) => p.partition)], [[50], ['slappart1']], 'the fleet, as a partition sees it, is itself');
  const other = await read((tx) => gatherUsage(tx, part, { kind: 'partition', computer: 'COMP-1', partition: 'slappart0' }, 'service_module/memory_used', 'hour', now));
  t.deepEqual(other.values, [], 'another partition\'s usage is not shown');
  const tree = await read((tx) => gatherUsage(tx, user, { kind: 'instance', title: 'a' }, 'service_module/memory_used', 'hour', now));
  t.deepEqual(tree.values, [100]);
});

test('secrets: masked for anonymous callers, secret-looking ones masked for others unless asked; root on loopback is the operator', async (t) => {
  const { master } = await setup(t);
  // Without TLS the master knows a loopback caller by its uid (docs/master.md): the test runs as root, the operator.
  const root = await (await fetch(`${master.url}api/instances?secrets=1`)).json() as { secrets: boolean; instances: Array<{ title: string; parameters: Record<string, string> }> };
  t.true(root.secrets);
  t.deepEqual(root.instances.find((i) => i.title === 'a')?.parameters, { 'db-password': 'hunter2', name: 'shop' });
  const [anonymous] = await master.store.read((tx) => gatherInstances(tx, { secrets: false, who: 'anonymous' }, true));
  t.deepEqual(anonymous?.parameters, { 'db-password': MASK, name: MASK }, 'an anonymous caller sees no value, even when it asks');
  const user = { secrets: true, who: 'user u' };
  const [masked] = await master.store.read((tx) => gatherInstances(tx, user, false));
  t.deepEqual(masked?.parameters, { 'db-password': MASK, name: 'shop' });
  t.deepEqual(masked?.connection_parameters, { url: MASK, port: '8080' }, 'a URL with credentials is a secret');
  const [shown] = await master.store.read((tx) => gatherInstances(tx, user, true));
  t.deepEqual(shown?.parameters, { 'db-password': 'hunter2', name: 'shop' });
});

test('the JSON API refuses bad scopes, resources and ranges with the reason', async (t) => {
  const { master } = await setup(t);
  const get = async (query: string) => { const r = await fetch(`${master.url}api/usage?${query}`); return [r.status, await r.text()] as const; };
  t.like(await get('scope=partition:COMP-1'), { 0: 400 });
  t.regex((await get('resource=cpu,gpu'))[1], /unknown: gpu/);
  t.regex((await get('range=decade'))[1], /range must be one of hour, day, week, month, year/);
  t.regex((await get('end=abc'))[1], /end must be a unix time/);
  const ok = await fetch(`${master.url}api/usage?scope=computer:COMP-1&resource=memory&range=hour`);
  t.is(ok.status, 200);
  t.deepEqual(((await ok.json()) as { series: Array<{ values: number[] }> }).series[0]?.values, [150]);
  t.deepEqual(parseScope('instance:a'), { kind: 'instance', title: 'a' });
  t.is(parseScope('partition:/x'), null);
});
