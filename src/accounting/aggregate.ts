// Samples → usage of one period → TioXML movements. Pure.
//
// Counters (CPU time, io, network) are cumulative: a period's usage is the
// sum of the increases between consecutive samples, starting from the last
// sample before the period (its baseline). A counter that goes down was reset
// (cgroup re-created at destruction, tap re-created, reboot): the new value is
// what was used since the reset. Gauges (memory, pids, disk) are averaged.
import type { CgroupUsage } from '../cgroup/counters.js';
import { tioDate, renderJournal, type Movement } from './tioxml.js';

/** One partition's counters at one time: its cgroup's usage, plus tap and disk. */
export interface Sample extends CgroupUsage {
  partition: string;
  /** Unix time, seconds. */
  at: number;
  /** Tap counters as the host sees them: rx = sent by the partition, tx = received by it. */
  netRxBytes: number | null;
  netTxBytes: number | null;
  netRxPackets: number | null;
  netTxPackets: number | null;
  diskBytes: number | null;
}

export const COUNTERS = ['cpuUsec', 'ioReadBytes', 'ioWriteBytes', 'netRxBytes', 'netTxBytes', 'netRxPackets', 'netTxPackets'] as const;
type Counter = (typeof COUNTERS)[number];

export interface PeriodUsage {
  partition: string;
  samples: number;
  cpuSeconds: number;
  ioReadBytes: number;
  ioWriteBytes: number;
  /** Received by the partition (tap tx). */
  netInBytes: number;
  netOutBytes: number;
  netInPackets: number;
  netOutPackets: number;
  memoryMeanBytes: number | null;
  memoryPeakBytes: number | null;
  pidsMean: number | null;
  diskMeanBytes: number | null;
}

const increase = (previous: number, current: number) => (current >= previous ? current - previous : current);

const mean = (values: number[]) => (values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length);

/**
 * Usage of one partition from its samples in the period (sorted by time) and
 * the last sample before the period (undefined: the first sample is the baseline).
 */
export function partitionUsage(partition: string, baseline: Sample | undefined, samples: readonly Sample[]): PeriodUsage {
  const sums: Record<Counter, number> = {
    cpuUsec: 0, ioReadBytes: 0, ioWriteBytes: 0, netRxBytes: 0, netTxBytes: 0, netRxPackets: 0, netTxPackets: 0,
  };
  for (const counter of COUNTERS) {
    let previous = baseline?.[counter] ?? null;
    for (const sample of samples) {
      const value = sample[counter];
      if (value === null) continue;
      if (previous !== null) sums[counter] += increase(previous, value);
      previous = value;
    }
  }
  const observed = samples.flatMap((s) => (s.memoryBytes === null ? [] : [s.memoryBytes]));
  // memory.peak / max_usage_in_bytes are high-water marks since the group was
  // made: a rise during the period is a peak of this period.
  let peak = observed.length > 0 ? Math.max(...observed) : null;
  let lastPeak = baseline?.memoryPeakBytes ?? null;
  for (const s of samples) {
    if (s.memoryPeakBytes === null) continue;
    if (lastPeak === null || s.memoryPeakBytes !== lastPeak) peak = Math.max(peak ?? 0, s.memoryPeakBytes);
    lastPeak = s.memoryPeakBytes;
  }
  return {
    partition,
    samples: samples.length,
    cpuSeconds: sums.cpuUsec / 1e6,
    ioReadBytes: sums.ioReadBytes,
    ioWriteBytes: sums.ioWriteBytes,
    netInBytes: sums.netTxBytes,
    netOutBytes: sums.netRxBytes,
    netInPackets: sums.netTxPackets,
    netOutPackets: sums.netRxPackets,
    memoryMeanBytes: mean(observed),
    memoryPeakBytes: peak,
    pidsMean: mean(samples.flatMap((s) => (s.pids === null ? [] : [s.pids]))),
    diskMeanBytes: mean(samples.flatMap((s) => (s.diskBytes === null ? [] : [s.diskBytes]))),
  };
}

/** Groups samples by partition (each sorted by time) and computes each partition's usage. */
export function periodUsage(samples: readonly Sample[], baselines: ReadonlyMap<string, Sample>): PeriodUsage[] {
  const byPartition = new Map<string, Sample[]>();
  for (const s of samples) {
    const list = byPartition.get(s.partition) ?? [];
    list.push(s);
    byPartition.set(s.partition, list);
  }
  return [...byPartition.entries()]
    .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
    .map(([partition, list]) => partitionUsage(partition, baselines.get(partition), list.sort((a, b) => a.at - b.at)));
}

const MIB = 1024 * 1024;

/** The resources of our usage movements (the reference's names where it has one). */
export function usageMovements(usage: PeriodUsage, periodSeconds: number): Movement[] {
  const m = (resource: string, title: string, quantity: number): Movement => ({
    resource, title, reference: usage.partition, quantity, price: 0, vat: '',
  });
  const list = [
    m('service_module/cpu_load_percent', 'CPU load (percent of one CPU, mean over the period)', (usage.cpuSeconds / periodSeconds) * 100),
    m('service_module/cpu_time', 'CPU time (seconds)', usage.cpuSeconds),
    m('service_module/io_read', 'Block io read (MiB)', usage.ioReadBytes / MIB),
    m('service_module/io_write', 'Block io written (MiB)', usage.ioWriteBytes / MIB),
    m('service_module/network_in', 'Network received through the tap (MiB)', usage.netInBytes / MIB),
    m('service_module/network_out', 'Network sent through the tap (MiB)', usage.netOutBytes / MIB),
    m('service_module/network_in_packets', 'Network packets received through the tap', usage.netInPackets),
    m('service_module/network_out_packets', 'Network packets sent through the tap', usage.netOutPackets),
  ];
  if (usage.memoryMeanBytes !== null) list.push(m('service_module/memory_used', 'Memory used (MiB, mean)', usage.memoryMeanBytes / MIB));
  if (usage.memoryPeakBytes !== null) list.push(m('service_module/memory_peak', 'Memory peak (MiB)', usage.memoryPeakBytes / MIB));
  if (usage.pidsMean !== null) list.push(m('service_module/process_count', 'Processes and threads (mean)', usage.pidsMean));
  if (usage.diskMeanBytes !== null) list.push(m('service_module/disk_used', 'Disk used (MiB, mean)', usage.diskMeanBytes / MIB));
  return list;
}

/** The journal of one period, or null when no partition has samples in it. */
export function periodJournal(computerId: string, start: number, end: number, usages: readonly PeriodUsage[]): string | null {
  const movements = usages.filter((u) => u.samples > 0).flatMap((u) => usageMovements(u, end - start));
  if (movements.length === 0) return null;
  return renderJournal([{
    type: 'Sale Packing List', title: 'Resource consumptions', startDate: tioDate(start), stopDate: tioDate(end),
    reference: computerId, currency: '', paymentMode: '', categories: [''],
    arrow: { type: 'Administration', source: '', destination: '' }, movements,
  }]);
}

/** The periods [start, end) holding pending samples that are over (end ≤ now − grace), oldest first. */
export function finishedPeriods(pendingTimes: readonly number[], now: number, period: number, grace: number): Array<[number, number]> {
  const starts = [...new Set(pendingTimes.map((at) => Math.floor(at / period) * period))].sort((a, b) => a - b);
  return starts.filter((start) => start + period <= now - grace).map((start) => [start, start + period]);
}
