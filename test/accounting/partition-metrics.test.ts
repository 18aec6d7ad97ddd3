// Per-partition usage as metrics of the node daemon: the latest sample of each
// partition in the accounting store, read at scrape time.
import test from 'ava';
import { Registry } from 'prom-client';
import { storePath, UsageStore } from '../../src/accounting/store.js';
import { registerPartitionUsage } from '../../src/node/partition-metrics.js';
import { tempDir } from '../helpers/system.js';

const sample = (partition: string, at: number, cpuUsec: number, memoryBytes: number | null) => ({
  partition, at, cpuUsec, memoryBytes, memoryPeakBytes: null, ioReadBytes: 10, ioWriteBytes: 20, pids: 3,
  netRxBytes: 100, netTxBytes: 200, netRxPackets: 1, netTxPackets: 2, diskBytes: 4096,
});

test('the latest sample of each partition, as counters and gauges labelled by partition', async (t) => {
  const root = tempDir(t);
  const registry = new Registry();
  registerPartitionUsage(registry, root);
  t.notRegex(await registry.metrics(), /partition="/, 'no store yet: no sample, no error');
  const store = new UsageStore(storePath(root));
  store.addSamples([sample('slappart0', 60, 1_000_000, 5), sample('slappart0', 120, 3_500_000, 7), sample('slappart1', 120, 0, null)]);
  store.close();
  const text = await registry.metrics();
  t.regex(text, /# TYPE slapos_node_partition_cpu_seconds_total counter/);
  t.regex(text, /slapos_node_partition_cpu_seconds_total\{partition="slappart0"\} 3\.5\n/);
  t.regex(text, /slapos_node_partition_memory_bytes\{partition="slappart0"\} 7\n/);
  t.notRegex(text, /slapos_node_partition_memory_bytes\{partition="slappart1"\}/, 'an unmeasured value is absent, not 0');
  t.regex(text, /slapos_node_partition_network_receive_bytes_total\{partition="slappart1"\} 200\n/, 'the tap\'s tx is what the partition received');
  t.regex(text, /slapos_node_partition_sample_timestamp_seconds\{partition="slappart1"\} 120\n/);
  t.notThrows(() => registerPartitionUsage(registry, root), 'registering twice in one process is harmless');
});
