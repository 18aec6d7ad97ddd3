// `slapos node collect`: one sample per partition (cgroup counters, tap
// counters, disk usage) appended to the usage store, then the hardware status.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { attachPartitionProcesses } from '../cgroup/attach.js';
import { CgroupTree } from '../cgroup/group.js';
import { detectLayout, type CgroupLayout } from '../cgroup/layout.js';
import type { CgroupUsage } from '../cgroup/counters.js';
import { native } from '../native/index.js';
import type { Logger } from '../util/log.js';
import type { Sample } from './aggregate.js';
import { mountPointOf, quotaUsage, walkDiskUsage, walkOrder } from './disk.js';
import { readHardwareStatus, writeHardwareStatus, type PartitionTotals } from './hardware.js';
import { netCounterFiles, netUsageFromContents, SYS_CLASS_NET, type NetUsage } from './network.js';
import { discoverPartitions, type LocalPartition } from './partitions.js';
import type { AccountingSettings } from './settings.js';
import { storePath, UsageStore } from './store.js';

export interface CollectOptions {
  settings: AccountingSettings;
  log: Logger;
  /** Defaults to detectLayout(); tests pass the cgroup2 mount beside the v1 ones. */
  layout?: CgroupLayout;
  /** Defaults to /sys/class/net; tests read a test namespace's sysfs. */
  netRoot?: string;
  now?: () => number;
}

export interface CollectResult {
  at: number;
  samples: Sample[];
  diskMeasured: string[];
  hardwareStatusFile: string;
}

const EMPTY_CGROUP: CgroupUsage = { cpuUsec: null, memoryBytes: null, memoryPeakBytes: null, ioReadBytes: null, ioWriteBytes: null, pids: null };

function readCgroups(partitions: readonly LocalPartition[], options: CollectOptions): Map<string, CgroupUsage> {
  let layout: CgroupLayout;
  try {
    layout = options.layout ?? detectLayout();
  } catch (error) {
    options.log.warn({ err: error, code: 'CGROUPS_UNUSABLE' }, 'no cgroup counters');
    return new Map();
  }
  const tree = new CgroupTree(layout, options.settings.cgroupParent);
  const valid = partitions.filter((p) => /^[A-Za-z0-9_.-]{1,64}$/.test(p.id));
  // Processes a partition started since the last run (or that supervisord
  // restarted outside the group) are counted from now on.
  const moved = attachPartitionProcesses(tree, valid, (m) => options.log.warn(m));
  if (moved > 0) options.log.debug({ moved }, 'collect: partition processes moved into their cgroups');
  return tree.usageOf(valid.map((p) => p.id));
}

function readNet(partitions: readonly LocalPartition[], netRoot: string): Map<string, NetUsage> {
  const files = partitions.map((p) => netCounterFiles(p.tap, netRoot));
  const contents = native().cgroupReadValues(files.flat());
  const out = new Map<string, NetUsage>();
  let offset = 0;
  partitions.forEach((p, i) => {
    const n = files[i]?.length ?? 0;
    out.set(p.id, netUsageFromContents(n === 0 ? [] : contents.slice(offset, offset + n)));
    offset += n;
  });
  return out;
}

/** Refreshes the store's disk cache (quota first, then bounded walks); returns the partitions measured. */
async function measureDisks(partitions: readonly LocalPartition[], store: UsageStore, options: CollectOptions, now: number): Promise<string[]> {
  const { collect, instanceRoot } = options.settings;
  if (!collect.report_disk_usage) return [];
  const measured: string[] = [];
  let quota: Map<number, number> | null = null;
  if (collect.disk_snapshot_use_quota) {
    quota = await quotaUsage(mountPointOf(instanceRoot, readFileSync('/proc/self/mountinfo', 'utf8'))).catch(() => null);
  }
  const walkable: LocalPartition[] = [];
  for (const p of partitions) {
    const bytes = quota && p.uid !== null ? quota.get(p.uid) : undefined;
    if (bytes !== undefined) {
      store.setDisk({ partition: p.id, bytes, at: now, partial: false, method: 'quota' });
      measured.push(p.id);
    } else {
      walkable.push(p);
    }
  }
  const deadline = Date.now() + collect.disk_walk_time_budget * 1000;
  const byId = new Map(walkable.map((p) => [p.id, p]));
  for (const id of walkOrder([...byId.keys()], store.disk(), now, collect.disk_snapshot_time_cycle)) {
    if (Date.now() >= deadline) break; // the others keep their cached value until a later run
    const p = byId.get(id) as LocalPartition;
    try {
      const result = walkDiskUsage(p.path, collect.disk_walk_max_entries, deadline);
      store.setDisk({ partition: id, bytes: result.bytes, at: now, partial: result.partial, method: 'walk' });
      if (result.partial) options.log.warn({ code: 'DISK_WALK_CAPPED', partition: id, path: p.path, entries: result.entries }, 'disk usage is a lower bound: walk stopped');
      measured.push(id);
    } catch (error) {
      options.log.warn({ err: error, code: 'DISK_USAGE_FAILED', partition: id, path: p.path }, 'cannot measure the disk usage');
    }
  }
  return measured;
}

export async function runCollect(options: CollectOptions): Promise<CollectResult> {
  const { settings, log } = options;
  const now = Math.floor((options.now ?? (() => Date.now() / 1000))());
  const partitions = await discoverPartitions(settings, (m) => log.warn(m));
  const cgroups = readCgroups(partitions, options);
  const net = readNet(partitions, options.netRoot ?? SYS_CLASS_NET);
  const store = new UsageStore(storePath(settings.instanceRoot));
  try {
    const diskMeasured = await measureDisks(partitions, store, options, now);
    const disk = store.disk();
    const samples: Sample[] = partitions.map((p) => {
      const c = cgroups.get(p.id) ?? EMPTY_CGROUP;
      const n = net.get(p.id);
      return {
        partition: p.id, at: now, cpuUsec: c.cpuUsec, memoryBytes: c.memoryBytes, memoryPeakBytes: c.memoryPeakBytes,
        ioReadBytes: c.ioReadBytes, ioWriteBytes: c.ioWriteBytes, pids: c.pids,
        netRxBytes: n?.rx_bytes ?? null, netTxBytes: n?.tx_bytes ?? null, netRxPackets: n?.rx_packets ?? null, netTxPackets: n?.tx_packets ?? null,
        diskBytes: disk.get(p.id)?.bytes ?? null,
      };
    });
    store.addSamples(samples);
    store.prune(now, settings.retentionDays);
    const sum = (f: (s: Sample) => number | null) => samples.reduce((a, s) => a + (f(s) ?? 0), 0);
    const totals: PartitionTotals = {
      count: partitions.length,
      active: samples.filter((s) => (s.pids ?? 0) > 0).length,
      cpu_seconds: sum((s) => s.cpuUsec) / 1e6,
      memory_bytes: sum((s) => s.memoryBytes),
      pids: sum((s) => s.pids),
      disk_bytes: sum((s) => s.diskBytes),
      net_in_bytes: sum((s) => s.netTxBytes),
      net_out_bytes: sum((s) => s.netRxBytes),
    };
    const taps = new Set(partitions.flatMap((p) => (p.tap ? [p.tap] : [])));
    // The boot-long host facts are cached beside the store (root-only directory).
    const cacheFile = path.join(path.dirname(storePath(settings.instanceRoot)), 'host-static.json');
    const status = await readHardwareStatus(settings.computerId, totals, (name) => taps.has(name), new Date(), { cacheFile });
    writeHardwareStatus(settings.hardwareStatusFile, status);
    log.info({ samples: samples.length, disk_measured: diskMeasured.length }, 'collect: partition samples stored');
    return { at: now, samples, diskMeasured, hardwareStatusFile: settings.hardwareStatusFile };
  } finally {
    store.close();
  }
}
