// The set-up the web view's tests share: a master with COMP-1 formatted, and a
// small fleet as nodes and users fill it (two computers, a supplied release,
// two instances with a secret parameter and a secret connection URL, a usage
// journal, a hardware status). The fill goes through the client of each role,
// so the same fleet is made over plain HTTP (one operator client) and over TLS
// (a user's and each computer's certificate).
import type { ExecutionContext } from 'ava';
import { periodJournal } from '../../src/accounting/aggregate.js';
import { SlapClient } from '../../src/slap/client.js';
import { startTestMaster, type TestMaster } from './master.js';
import { computer, hardwareDocument } from './semantics-suite.js';

export const WEB_SR = '/opt/sr/trivial/software.cfg';

/** A plain-HTTP master (port 0 on loopback) with COMP-1 and its 3 partitions, and a client (root on loopback: the operator). */
export async function webMaster(t: ExecutionContext): Promise<{ master: TestMaster; client: SlapClient }> {
  const master = await startTestMaster(t, 'COMP-1');
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer('COMP-1', 3));
  return { master, client };
}

/** Who fills the fleet: the user who supplies and requests, and each computer for its own reports. */
export interface FleetClients {
  user: SlapClient;
  computer(id: string): SlapClient;
}

/**
 * COMP-1 (3 partitions: a on slappart0, b on slappart1) and COMP-2 (1, free);
 * a's parameters hold `db-password`, its connection a URL with credentials;
 * 150 MiB of memory used on COMP-1 in the last finished 5-minute period.
 */
export async function fillSmallFleet(clients: FleetClients): Promise<void> {
  const comp1 = clients.computer('COMP-1');
  await comp1.loadComputerConfigurationFromXML(computer('COMP-1', 3));
  await clients.computer('COMP-2').loadComputerConfigurationFromXML(computer('COMP-2', 1));
  await clients.user.supplySupply(WEB_SR, 'COMP-1');
  await clients.user.requestComputerPartition(WEB_SR, 'a', { parameters: { 'db-password': 'hunter2', name: 'shop' } });
  await clients.user.requestComputerPartition(WEB_SR, 'b', { parameters: { name: 'blog' } });
  await comp1.setComputerPartitionConnectionXml('COMP-1', 'slappart0', { url: 'https://user:pw@[fd00::1]/', port: '8080' });
  const start = Math.floor(Date.now() / 1000 / 300) * 300 - 600;
  const usage = (partition: string, mib: number) => ({
    partition, samples: 1, cpuSeconds: 30, ioReadBytes: 0, ioWriteBytes: 0, netInBytes: 0, netOutBytes: 0, netInPackets: 0, netOutPackets: 0,
    memoryMeanBytes: mib * 1024 * 1024, memoryPeakBytes: null, pidsMean: null, diskMeanBytes: null,
  });
  await comp1.useComputer('COMP-1', periodJournal('COMP-1', start, start + 300, [usage('slappart0', 100), usage('slappart1', 50)]) as string);
  await comp1.call('POST', 'reportHardwareStatus', { computer_id: 'COMP-1', hardware_status: JSON.stringify(hardwareDocument({ computer_id: 'COMP-1', hostname: 'node-1' })) });
}
