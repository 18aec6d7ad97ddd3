// The global hardware status: <instance_root>/var/hardware-status.json,
// world-readable (0644, root-owned, written atomically) by every collect run
// and shown by `slapos node status --json` under "hardware". It holds only
// what is public by design: host-wide figures and partition totals, never a
// partition's own usage, and no partition tap (docs/accounting.md).
//
// Cost (docs/performance.md): systeminformation's CPU and temperature probes
// spawn lscpu, sh, grep and cat (~20 processes) and its network probe one
// `cat` per interface (66 on a test host): together ~0.5 s of a 3-partition
// collect. The network counters are read here from sysfs directly; the CPU
// description and whether a temperature sensor exists do not change during a
// boot and are kept in a root-only cache file keyed by the boot id.
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Systeminformation } from 'systeminformation';
import { writeBeneath } from '../safe-fs/index.js';
import { HARDWARE_SCHEMA } from '../slap/hardware-report.js';

// One schema name for the file and for what `node report` sends of it (src/slap/hardware-report.ts).
export { HARDWARE_SCHEMA };

export interface PartitionTotals {
  count: number;
  /** Partitions whose cgroup holds at least one process. */
  active: number;
  cpu_seconds: number;
  memory_bytes: number;
  pids: number;
  disk_bytes: number;
  net_in_bytes: number;
  net_out_bytes: number;
}

export interface HardwareStatus {
  schema: typeof HARDWARE_SCHEMA;
  generated_at: string;
  computer_id: string;
  hostname: string;
  kernel: string;
  uptime_seconds: number;
  cpu: { model: string | null; vendor: string | null; cores: number; physical_cores: number | null; speed_ghz: number | null; load_average: [number, number, number] };
  memory: { total_bytes: number; available_bytes: number; used_bytes: number; swap_total_bytes: number | null; swap_used_bytes: number | null };
  disks: Array<{ filesystem: string; type: string; mount: string; size_bytes: number; used_bytes: number; available_bytes: number }>;
  network: Array<{ name: string; operstate: string | null; rx_bytes: number; tx_bytes: number; rx_errors: number; tx_errors: number; rx_dropped: number; tx_dropped: number }>;
  /** null when no sensor is readable (common in VMs). */
  temperature: { main_celsius: number | null; max_celsius: number | null; cores_celsius: number[] } | null;
  partitions: PartitionTotals;
  /** Sections that could not be read, with why. */
  errors: Record<string, string>;
}

/** Each systeminformation call gets a few seconds; a stuck probe must not hold the minute's collect. */
async function bounded<T>(name: string, errors: Record<string, string>, call: () => Promise<T>, ms = 5_000): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      call(),
      new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms); }),
    ]);
  } catch (error) {
    errors[name] = (error as Error).message;
    return null;
  } finally {
    clearTimeout(timer);
  }
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

type NetworkEntry = HardwareStatus['network'][number];
const NET_FIELDS = ['rx_bytes', 'tx_bytes', 'rx_errors', 'tx_errors', 'rx_dropped', 'tx_dropped'] as const;

/** Counters of every interface under `netRoot` (/sys/class/net), read from sysfs: no process spawned. */
export function readNetworkStats(netRoot = '/sys/class/net'): NetworkEntry[] {
  const out: NetworkEntry[] = [];
  for (const name of readdirSync(netRoot)) {
    const read = (file: string): string | null => {
      try {
        return readFileSync(path.join(netRoot, name, file), 'utf8').trim();
      } catch {
        return null; // the interface went away, or the counter is not there
      }
    };
    const counters = NET_FIELDS.map((f) => Number(read(`statistics/${f}`) ?? Number.NaN));
    if (counters.some((c) => !Number.isFinite(c))) continue;
    const [rx_bytes, tx_bytes, rx_errors, tx_errors, rx_dropped, tx_dropped] = counters as [number, number, number, number, number, number];
    out.push({ name, operstate: read('operstate'), rx_bytes, tx_bytes, rx_errors, tx_errors, rx_dropped, tx_dropped });
  }
  return out;
}

/** What does not change during a boot: the CPU description, and whether a temperature sensor answers. */
export interface HostStatic {
  boot_id: string;
  cpu: Pick<HardwareStatus['cpu'], 'model' | 'vendor' | 'cores' | 'physical_cores' | 'speed_ghz'>;
  temperature_sensor: boolean;
}

const bootId = (): string => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return `uptime-${Math.round(Date.now() / 1000 - os.uptime())}`;
  }
};

function readHostStatic(cacheFile: string | undefined, boot: string): HostStatic | null {
  if (!cacheFile) return null;
  try {
    const cached = JSON.parse(readFileSync(cacheFile, 'utf8')) as HostStatic;
    return cached.boot_id === boot && typeof cached.cpu?.cores === 'number' ? cached : null;
  } catch {
    return null;
  }
}

/**
 * Reads the host. `hideInterface` says which interfaces are partition taps (left out).
 * `cacheFile` (root-only, e.g. <instance_root>/var/accounting/host-static.json)
 * keeps the boot-long facts between runs; without it every probe runs.
 */
export async function readHardwareStatus(
  computerId: string, partitions: PartitionTotals, hideInterface: (name: string) => boolean, now = new Date(),
  options: { cacheFile?: string; netRoot?: string } = {},
): Promise<HardwareStatus> {
  const errors: Record<string, string> = {};
  const si = (await import('systeminformation')).default;
  const boot = bootId();
  const cached = readHostStatic(options.cacheFile, boot);
  const [cpu, mem, fs, temp] = await Promise.all([
    cached ? null : bounded('cpu', errors, () => si.cpu()),
    bounded('memory', errors, () => si.mem()),
    bounded('disks', errors, () => si.fsSize()),
    cached && !cached.temperature_sensor ? null : bounded('temperature', errors, () => si.cpuTemperature()),
  ]);
  let net: NetworkEntry[] = [];
  try {
    net = readNetworkStats(options.netRoot);
  } catch (error) {
    errors.network = (error as Error).message;
  }
  const load = os.loadavg();
  const temperature = temp && (num(temp.main) !== null || temp.cores.length > 0)
    ? { main_celsius: num(temp.main), max_celsius: num(temp.max), cores_celsius: temp.cores.filter((c) => Number.isFinite(c)) }
    : null;
  const cpuStatic: HostStatic['cpu'] = cached?.cpu ?? cpuDescription(cpu);
  if (options.cacheFile && !cached && !errors.cpu && !errors.temperature) {
    try {
      writeOwnFile(options.cacheFile, { boot_id: boot, cpu: cpuStatic, temperature_sensor: temperature !== null } satisfies HostStatic, 0o600);
    } catch {
      // the cache is an optimisation: the next run probes again
    }
  }
  return {
    schema: HARDWARE_SCHEMA,
    generated_at: now.toISOString(),
    computer_id: computerId,
    hostname: os.hostname(),
    kernel: os.release(),
    uptime_seconds: Math.round(os.uptime()),
    cpu: { ...cpuStatic, load_average: [load[0] ?? 0, load[1] ?? 0, load[2] ?? 0] },
    memory: {
      total_bytes: mem?.total ?? os.totalmem(),
      available_bytes: mem?.available ?? os.freemem(),
      used_bytes: mem ? mem.total - mem.available : os.totalmem() - os.freemem(),
      swap_total_bytes: mem?.swaptotal ?? null,
      swap_used_bytes: mem?.swapused ?? null,
    },
    disks: (fs ?? []).map((d) => ({
      filesystem: d.fs, type: d.type, mount: d.mount, size_bytes: d.size, used_bytes: d.used, available_bytes: d.available,
    })),
    network: net.filter((n) => !hideInterface(n.name)).sort((a, b) => a.name.localeCompare(b.name)),
    temperature,
    partitions,
    errors,
  };
}

function cpuDescription(cpu: Systeminformation.CpuData | null): HostStatic['cpu'] {
  return {
    model: cpu ? `${cpu.manufacturer} ${cpu.brand}`.trim() : (os.cpus()[0]?.model ?? null),
    vendor: cpu?.vendor ?? null,
    cores: cpu?.cores ?? os.cpus().length,
    physical_cores: cpu?.physicalCores ?? null,
    speed_ghz: num(cpu?.speed) || null,
  };
}

/** Writes the document atomically (safe-fs: temp, fsync, rename, fsync of the directory), 0644. */
export function writeHardwareStatus(file: string, status: HardwareStatus): void {
  writeOwnFile(file, status, 0o644);
}

/** A root-owned file in a root-owned directory (not under a partition), written atomically with `mode` (safe-fs). */
function writeOwnFile(file: string, value: unknown, mode: number): void {
  writeBeneath(path.dirname(file), path.basename(file), `${JSON.stringify(value, null, 2)}\n`, { mode });
}

/** The last document, or null when collect has not written one yet. */
export function readHardwareStatusFile(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`cannot read ${file}: ${(error as Error).message}`);
  }
}
