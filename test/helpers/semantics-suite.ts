// Master semantics through the typed client against a real listening server:
// allocation under concurrency, destruction order, shared instances, reports.
// Defined once, run against each storage engine (semantics.test.ts: SQLite,
// postgres.test.ts: PostgreSQL).
import test, { type ExecutionContext } from 'ava';
import { SlapClient } from '../../src/slap/client.js';
import { SlapNotFoundError } from '../../src/slap/errors.js';
import type { PyRecord } from '../../src/slap/pyvalue.js';
import { startTestMaster, type StoreFactory } from './master.js';

const SR = '/opt/sr/trivial/software.cfg';

export function computer(id: string, partitions: number): PyRecord {
  return {
    reference: id, address: '10.0.0.1', netmask: '255.255.0.0',
    partition_list: Array.from({ length: partitions }, (_, i) => ({
      reference: `slappart${i}`, tap: { name: `tap${i}` },
      address_list: [{ addr: `10.0.1.${i}`, netmask: '255.255.255.255' }],
    })),
  };
}

/** A hardware-status document as `slapos node collect` writes it (src/accounting/hardware.ts), with `changes`. */
export function hardwareDocument(changes: Record<string, unknown>): Record<string, unknown> {
  return {
    schema: 'slapos-node/hardware-status/1', generated_at: new Date().toISOString(), computer_id: 'COMP-1234', hostname: 'node', kernel: '6.1.0-test',
    uptime_seconds: 3600, cpu: { model: 'Test CPU', vendor: null, cores: 2, physical_cores: 2, speed_ghz: null, load_average: [0.5, 0.25, 0.1] },
    memory: { total_bytes: 8 * 2 ** 30, available_bytes: 6 * 2 ** 30, used_bytes: 2 * 2 ** 30, swap_total_bytes: 0, swap_used_bytes: 0 },
    disks: [{ filesystem: '/dev/vda1', type: 'ext4', mount: '/', size_bytes: 100 * 2 ** 30, used_bytes: 40 * 2 ** 30, available_bytes: 60 * 2 ** 30 }],
    network: [], temperature: null, partitions: { count: 1, active: 0, cpu_seconds: 0, memory_bytes: 0, pids: 0, disk_bytes: 0, net_in_bytes: 0, net_out_bytes: 0 },
    errors: {}, ...changes,
  };
}

/** Registers the semantics tests, titled with `prefix`, on masters whose store `openStore` makes (SQLite by default). */
export function defineSemantics(prefix: string, openStore?: StoreFactory): void {
  async function setup(t: ExecutionContext, partitions: number) {
    const master = await startTestMaster(t, 'COMP-1234', undefined, openStore);
    const client = new SlapClient(master.url);
    t.teardown(() => client.close());
    await client.loadComputerConfigurationFromXML(computer('COMP-1234', partitions));
    return { master, client };
  }

  test(`${prefix}50 concurrent requests never get the same partition`, async (t) => {
    const { client } = await setup(t, 40);
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => client.requestComputerPartition(SR, `inst${i}`)),
    );
    const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.partitionId] : []));
    const refused = results.filter((r) => r.status === 'rejected' && r.reason instanceof SlapNotFoundError);
    t.is(ok.length, 40);
    t.is(refused.length, 10);
    t.is(new Set(ok).size, 40, 'every allocated partition is distinct');
    const info = await client.getFullComputerInformation('COMP-1234');
    const titles = info.partitions.map((p) => p.parameters?.instance_title);
    t.is(new Set(titles).size, 40);
  });

  test(`${prefix}50 concurrent requests of the same title allocate once`, async (t) => {
    const { client } = await setup(t, 10);
    const results = await Promise.all(Array.from({ length: 50 }, () => client.requestComputerPartition(SR, 'same')));
    t.is(new Set(results.map((r) => r.partitionId)).size, 1);
    const info = await client.getFullComputerInformation('COMP-1234');
    t.is(info.partitions.filter((p) => p.softwareRelease !== null).length, 1);
  });

  test(`${prefix}children are destroyed before their root, and destroyed partitions are freed`, async (t) => {
    const { client } = await setup(t, 4);
    const root = await client.requestComputerPartition(SR, 'root');
    const child = await client.requestComputerPartition(SR, 'child', {
      requester: { computerId: 'COMP-1234', partitionId: root.partitionId ?? '' },
    });
    const childInfo = await client.registerComputerPartition('COMP-1234', child.partitionId ?? '');
    t.is(childInfo.parameters?.root_instance_title, 'root');
    await client.requestComputerPartition(SR, 'root', { state: 'destroyed' });
    const answer = await client.destroyedComputerPartition('COMP-1234', root.partitionId ?? '');
    t.regex(answer, /^Not destroying yet because this partition has child partitions: child/);
    const childNow = await client.registerComputerPartition('COMP-1234', child.partitionId ?? '');
    t.is(childNow.requestedState, 'destroyed');
    t.is(await client.destroyedComputerPartition('COMP-1234', child.partitionId ?? ''), 'OK');
    t.is(await client.destroyedComputerPartition('COMP-1234', root.partitionId ?? ''), 'OK');
    const info = await client.getFullComputerInformation('COMP-1234');
    t.true(info.partitions.every((p) => p.softwareRelease === null && p.requestedState === 'destroyed'));
    // A freed partition can be allocated again.
    const again = await client.requestComputerPartition(SR, 'again');
    t.is(again.partitionId, 'slappart0');
  });

  test(`${prefix}a running partition cannot be reported destroyed`, async (t) => {
    const { client } = await setup(t, 1);
    const inst = await client.requestComputerPartition(SR, 'running');
    await t.throwsAsync(client.destroyedComputerPartition('COMP-1234', inst.partitionId ?? ''), { message: /HTTP 400/ });
  });

  test(`${prefix}shared instances are listed on their host, with their own connection parameters`, async (t) => {
    const { client } = await setup(t, 2);
    const host = await client.requestComputerPartition(SR, 'host');
    const s1 = await client.requestComputerPartition(SR, 'front1', { shared: true, parameters: { url: 'http://a' } });
    t.is(s1.partitionId, host.partitionId);
    t.is(s1.instanceGuid, null);
    const before = await client.registerComputerPartition('COMP-1234', host.partitionId ?? '');
    const list = before.parameters?.slave_instance_list as PyRecord[];
    t.deepEqual(list, [{ slave_title: '_front1', slave_reference: '_front1', slap_software_type: 'default', url: 'http://a' }]);
    await client.setComputerPartitionConnectionXml('COMP-1234', host.partitionId ?? '', { 'secure-access': 'https://x' }, '_front1');
    const again = await client.requestComputerPartition(SR, 'front1', { shared: true, parameters: { url: 'http://a' } });
    t.deepEqual(again.connectionParameters, { 'secure-access': 'https://x' });
    const same = await client.registerComputerPartition('COMP-1234', host.partitionId ?? '');
    t.is(same.parameters?.timestamp, before.parameters?.timestamp, 'an identical shared request does not bump the host');
    await client.requestComputerPartition(SR, 'front1', { shared: true, state: 'destroyed' });
    const after = await client.registerComputerPartition('COMP-1234', host.partitionId ?? '');
    t.deepEqual(after.parameters?.slave_instance_list, []);
    t.not(after.parameters?.timestamp, before.parameters?.timestamp);
    await t.throwsAsync(client.requestComputerPartition('/other/software.cfg', 'nohost', { shared: true }), { instanceOf: SlapNotFoundError });
  });

  test(`${prefix}software and partition reports and usage are recorded`, async (t) => {
    const { master, client } = await setup(t, 1);
    await client.supplySupply(SR, 'COMP-1234');
    await client.buildingSoftwareRelease(SR, 'COMP-1234');
    await client.softwareReleaseError(SR, 'COMP-1234', 'boom');
    const inst = await client.requestComputerPartition(SR, 'i');
    await client.stoppedComputerPartition('COMP-1234', inst.partitionId ?? '');
    const journal = '<?xml version="1.0"?><journal><transaction type="Sale Packing List"><reference>COMP-1234</reference></transaction></journal>';
    await client.useComputer('COMP-1234', journal);
    const rows = await master.store.transaction(async (tx) => ({
      software: await tx.getSoftware(SR, 'COMP-1234'),
      partition: await tx.getPartition('COMP-1234', 'slappart0'),
      usage: await tx.listUsage('COMP-1234'),
    }));
    t.is(rows.software?.reported_state, 'error');
    t.is(rows.software?.error_log, 'boom');
    t.is(rows.partition?.reported_state, 'stopped');
    t.is(rows.usage.length, 1);
    t.is(rows.usage[0]?.use_string, journal);
    await t.throwsAsync(client.useComputer('COMP-1234', '<notjournal/>'), { message: /HTTP 400/ });
    await client.destroyedSoftwareRelease(SR, 'COMP-1234');
    const info = await client.getFullComputerInformation('COMP-1234');
    t.deepEqual(info.softwareReleases, []);
  });

  test(`${prefix}a usage report posted again with its report id is stored once; reports without one each time`, async (t) => {
    const { master, client } = await setup(t, 1);
    const journal = '<?xml version="1.0"?><journal><transaction type="Sale Packing List"><reference>COMP-1234</reference></transaction></journal>';
    const count = async () => (await master.store.transaction((tx) => tx.listUsage('COMP-1234'))).length;
    // Two posts of one report at once (an acknowledgement lost, the node retrying) and two later.
    await Promise.all([client.useComputer('COMP-1234', journal, 'a1b2c3'), client.useComputer('COMP-1234', journal, 'a1b2c3')]);
    await client.useComputer('COMP-1234', journal, 'a1b2c3');
    t.is(await count(), 1, 'one report id, stored once');
    await client.useComputer('COMP-1234', journal, 'd4e5f6');
    t.is(await count(), 2, 'the same document under another id is another report');
    await client.useComputer('COMP-1234', journal);
    await client.useComputer('COMP-1234', journal);
    t.is(await count(), 4, 'without an id (a slapos.core node), every post is stored, as the reference does');
    await t.throwsAsync(client.useComputer('COMP-1234', journal, 'bad id'), { message: /HTTP 400/ });
  });

  test(`${prefix}bang bumps the whole tree, computerBang changes nothing`, async (t) => {
    const { client } = await setup(t, 3);
    const root = await client.requestComputerPartition(SR, 'r');
    const child = await client.requestComputerPartition(SR, 'c', { requester: { computerId: 'COMP-1234', partitionId: root.partitionId ?? '' } });
    const other = await client.requestComputerPartition(SR, 'o');
    const stamp = async (p: string | null) => (await client.registerComputerPartition('COMP-1234', p ?? '')).parameters?.timestamp;
    const before = [await stamp(root.partitionId), await stamp(child.partitionId), await stamp(other.partitionId)];
    await client.computerBang('COMP-1234', 'x');
    t.deepEqual([await stamp(root.partitionId), await stamp(child.partitionId), await stamp(other.partitionId)], before);
    await client.softwareInstanceBang('COMP-1234', child.partitionId ?? '', 'promise failed');
    const after = [await stamp(root.partitionId), await stamp(child.partitionId), await stamp(other.partitionId)];
    t.not(after[0], before[0]);
    t.not(after[1], before[1]);
    t.is(after[2], before[2]);
  });

  test(`${prefix}related instances: a child its parent no longer lists is destroyed, unless another instance of the tree lists it`, async (t) => {
    const { client } = await setup(t, 6);
    const parent = await client.requestComputerPartition(SR, 'parent');
    const asParent = { requester: { computerId: 'COMP-1234', partitionId: parent.partitionId ?? '' } };
    const a = await client.requestComputerPartition(SR, 'child-a', asParent);
    const b = await client.requestComputerPartition(SR, 'child-b', asParent);
    const c = await client.requestComputerPartition(SR, 'child-c', asParent);
    const other = await client.requestComputerPartition(SR, 'other-root');
    const state = async (id: string | null) => (await client.registerComputerPartition('COMP-1234', id ?? '')).requestedState;
    const post = (id: string | null, titles: string[]) => client.updateComputerPartitionRelatedInstanceList('COMP-1234', id ?? '', titles);
    // The first list: nothing was listed before, so nothing is collected (child-c was never listed).
    await post(parent.partitionId, ['child-a', 'child-b', 'parent', 'other-root']);
    t.deepEqual([await state(a.partitionId), await state(b.partitionId), await state(c.partitionId)], ['started', 'started', 'started']);
    // child-b also lists child-a: when the parent drops both, child-b goes and child-a stays.
    await post(b.partitionId, ['child-a']);
    const stampB = (await client.registerComputerPartition('COMP-1234', b.partitionId ?? '')).parameters?.timestamp;
    await post(parent.partitionId, []);
    t.is(await state(b.partitionId), 'destroyed');
    t.not((await client.registerComputerPartition('COMP-1234', b.partitionId ?? '')).parameters?.timestamp, stampB, 'the node is told to process it');
    t.is(await state(a.partitionId), 'started', 'still listed by child-b');
    t.is(await state(c.partitionId), 'started', 'never listed: never collected');
    t.is(await state(parent.partitionId), 'started', 'the root lists itself: never collected');
    t.is(await state(other.partitionId), 'started', 'another tree: never collected');
    // child-b is destroyed by its node and freed: what only it listed is collected.
    t.is(await client.destroyedComputerPartition('COMP-1234', b.partitionId ?? ''), 'OK');
    t.is(await state(a.partitionId), 'destroyed');
  });

  test(`${prefix}a computer's hardware status is stored, replaced and served in /api/fleet; a bad one is refused whole`, async (t) => {
    const { master, client } = await setup(t, 1);
    const send = (document: unknown) => client.call('POST', 'reportHardwareStatus', { computer_id: 'COMP-1234', hardware_status: JSON.stringify(document) });
    await send(hardwareDocument({ hostname: 'node-a' }));
    await send(hardwareDocument({ hostname: 'node-b', extra: 'dropped' }));
    const fleet = await (await fetch(`${master.url}api/fleet`)).json() as { computers: Array<{ hardware: Record<string, unknown> | null }> };
    const hardware = fleet.computers[0]?.hardware;
    t.like(hardware, { hostname: 'node-b', cpu: { cores: 2 }, disks: [{ mount: '/', size_bytes: 100 * 2 ** 30 }] }, 'the last report replaced the first');
    t.is(typeof hardware?.reported_at, 'number');
    t.false('extra' in (hardware ?? {}), 'only the known fields are kept');
    await t.throwsAsync(send({ ...hardwareDocument({ hostname: 'node-c' }), memory: { total_bytes: -1 } }), { message: /HTTP 400.*memory/ });
    await t.throwsAsync(send({ schema: 'other/1' }), { message: /HTTP 400.*schema/ });
    await t.throwsAsync(client.call('POST', 'reportHardwareStatus', { computer_id: 'COMP-NONE', hardware_status: JSON.stringify(hardwareDocument({})) }), { message: /HTTP 404/ });
    const rows = await master.store.read((tx) => tx.listHardware());
    t.deepEqual(rows.map((r) => [r.computer_reference, (JSON.parse(r.document) as { hostname: string }).hostname]), [['COMP-1234', 'node-b']], 'refused reports stored nothing');
  });

  test(`${prefix}format drops unlisted partitions and keeps allocations`, async (t) => {
    const { client } = await setup(t, 3);
    await client.requestComputerPartition(SR, 'kept');
    await client.loadComputerConfigurationFromXML(computer('COMP-1234', 2));
    const info = await client.getFullComputerInformation('COMP-1234');
    t.deepEqual(info.partitions.map((p) => p.partitionId), ['slappart0', 'slappart1']);
    t.is(info.partitions[0]?.parameters?.instance_title, 'kept');
    await t.throwsAsync(client.getFullComputerInformation('COMP-UNKNOWN'), { instanceOf: SlapNotFoundError });
  });
}
