// Per-partition usage as Prometheus metrics of the node daemon: the latest
// sample of each partition in the accounting store (what `slapos node collect`
// last measured: cgroup, tap and disk), read at scrape time. Cumulative
// counters keep their counter type (rate() works across collect runs).
import { existsSync } from 'node:fs';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Sample } from '../accounting/aggregate.js';
import { storePath, UsageStore } from '../accounting/store.js';

type Field = Exclude<keyof Sample, 'partition' | 'at'>;

const COUNTERS: Array<[string, string, Field, number]> = [
  ['slapos_node_partition_cpu_seconds_total', 'CPU time used by the partition\'s cgroup', 'cpuUsec', 1e-6],
  ['slapos_node_partition_io_read_bytes_total', 'Block io read by the partition\'s cgroup', 'ioReadBytes', 1],
  ['slapos_node_partition_io_write_bytes_total', 'Block io written by the partition\'s cgroup', 'ioWriteBytes', 1],
  // The host's tap counters: the host's tx is what the partition received.
  ['slapos_node_partition_network_receive_bytes_total', 'Bytes received by the partition through its tap', 'netTxBytes', 1],
  ['slapos_node_partition_network_transmit_bytes_total', 'Bytes sent by the partition through its tap', 'netRxBytes', 1],
];
const GAUGES: Array<[string, string, Field]> = [
  ['slapos_node_partition_memory_bytes', 'Memory used by the partition\'s cgroup', 'memoryBytes'],
  ['slapos_node_partition_processes', 'Processes and threads in the partition\'s cgroup', 'pids'],
  ['slapos_node_partition_disk_bytes', 'Disk used by the partition\'s tree', 'diskBytes'],
];

/** Registers the per-partition metrics, read from `<instance_root>/var/accounting/usage.sqlite` at each scrape. */
export function registerPartitionUsage(registry: Registry, instanceRoot: string): void {
  if (registry.getSingleMetric('slapos_node_partition_sample_timestamp_seconds')) return; // a second daemon in one process
  const file = storePath(instanceRoot);
  let latest: Sample[] = [];
  const read = () => {
    if (!existsSync(file)) { latest = []; return; }
    const store = new UsageStore(file);
    try {
      latest = store.latestSamples();
    } finally {
      store.close();
    }
  };
  // prom-client collects metrics in registration order: this first one reads the store once per scrape, the others use what it read.
  new Gauge({
    name: 'slapos_node_partition_sample_timestamp_seconds', help: 'Unix time of the partition\'s latest usage sample', labelNames: ['partition'] as const,
    registers: [registry],
    collect() {
      read();
      this.reset();
      for (const s of latest) this.set({ partition: s.partition }, s.at);
    },
  });
  for (const [name, help, field, scale] of COUNTERS) {
    new Counter({
      name, help, labelNames: ['partition'] as const, registers: [registry],
      collect() {
        this.reset();
        for (const s of latest) if (typeof s[field] === 'number') this.inc({ partition: s.partition }, (s[field] as number) * scale);
      },
    });
  }
  for (const [name, help, field] of GAUGES) {
    new Gauge({
      name, help, labelNames: ['partition'] as const, registers: [registry],
      collect() {
        this.reset();
        for (const s of latest) if (typeof s[field] === 'number') this.set({ partition: s.partition }, s[field] as number);
      },
    });
  }
}
