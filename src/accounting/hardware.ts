// The global hardware status: <instance_root>/var/hardware-status.json,
// world-readable (0644, root-owned, written atomically) by every collect run
// and shown by `slapos node status --json` under "hardware". It holds only
// what is public by design: host-wide figures and partition totals, never a
// partition's own usage, and no partition tap (docs/accounting.md).
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeBeneath } from '../safe-fs/index.js';
import si from 'systeminformation';

export const HARDWARE_SCHEMA = 'slapos-node/hardware-status/1';

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

/** Reads the host. `hideInterface` says which interfaces are partition taps (left out). */
export async function readHardwareStatus(
  computerId: string, partitions: PartitionTotals, hideInterface: (name: string) => boolean, now = new Date(),
): Promise<HardwareStatus> {
  const errors: Record<string, string> = {};
  const [cpu, mem, fs, net, temp] = await Promise.all([
    bounded('cpu', errors, () => si.cpu()),
    bounded('memory', errors, () => si.mem()),
    bounded('disks', errors, () => si.fsSize()),
    bounded('network', errors, () => si.networkStats('*')),
    bounded('temperature', errors, () => si.cpuTemperature()),
  ]);
  const load = os.loadavg();
  const temperature = temp && (num(temp.main) !== null || temp.cores.length > 0)
    ? { main_celsius: num(temp.main), max_celsius: num(temp.max), cores_celsius: temp.cores.filter((c) => Number.isFinite(c)) }
    : null;
  return {
    schema: HARDWARE_SCHEMA,
    generated_at: now.toISOString(),
    computer_id: computerId,
    hostname: os.hostname(),
    kernel: os.release(),
    uptime_seconds: Math.round(os.uptime()),
    cpu: {
      model: cpu ? `${cpu.manufacturer} ${cpu.brand}`.trim() : (os.cpus()[0]?.model ?? null),
      vendor: cpu?.vendor ?? null,
      cores: cpu?.cores ?? os.cpus().length,
      physical_cores: cpu?.physicalCores ?? null,
      speed_ghz: num(cpu?.speed) || null,
      load_average: [load[0] ?? 0, load[1] ?? 0, load[2] ?? 0],
    },
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
    network: (net ?? [])
      .filter((n) => !hideInterface(n.iface))
      .map((n) => ({
        name: n.iface, operstate: n.operstate ?? null, rx_bytes: n.rx_bytes, tx_bytes: n.tx_bytes,
        rx_errors: n.rx_errors, tx_errors: n.tx_errors, rx_dropped: n.rx_dropped, tx_dropped: n.tx_dropped,
      }))
      .sort((a, b) => a.name.localeCompare(b.name)),
    temperature,
    partitions,
    errors,
  };
}

/** Writes the document atomically (safe-fs: temp, fsync, rename, fsync of the directory), 0644. */
export function writeHardwareStatus(file: string, status: HardwareStatus): void {
  writeBeneath(path.dirname(file), path.basename(file), `${JSON.stringify(status, null, 2)}\n`, { mode: 0o644 });
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
