// Per-partition limits → the files to write on each layout. Pure.
import path from 'node:path';
import type { CgroupLayout, V1Controller } from './layout.js';

export interface CgroupLimits {
  /** Relative CPU share, 1..10000, 100 = default (v2 cpu.weight; v1 cpu.shares = weight × 1024 / 100). */
  cpuWeight?: number | null;
  /** CPU ceiling in percent of one CPU (150 = one and a half CPUs); null = no ceiling. */
  cpuQuotaPercent?: number | null;
  /** Memory ceiling in bytes; null = no ceiling. */
  memoryMax?: number | null;
  /** Maximum number of processes and threads; null = no ceiling. */
  pidsMax?: number | null;
}

export interface LimitWrite {
  file: string;
  value: string;
}

/** The CFS period used for quotas, in microseconds (the kernel's default). */
export const CPU_PERIOD_USEC = 100_000;
/** v1 memory.limit_in_bytes accepts -1 for "no limit". */
const V1_UNLIMITED = '-1';

export class CgroupControllerMissing extends Error {
  constructor(readonly controller: string, where: string) {
    super(`cgroup controller "${controller}" is not available ${where}; cannot apply that limit`);
    this.name = 'CgroupControllerMissing';
  }
}

/**
 * The writes that make a group's limits what `limits` says. A key left
 * undefined is not touched; null resets it to unlimited (so a re-run after a
 * limit was removed from slapos.cfg converges).
 */
export function planLimitWrites(layout: CgroupLayout, relative: string, limits: CgroupLimits): LimitWrite[] {
  const writes: LimitWrite[] = [];
  if (layout.kind === 'unified') {
    const dir = path.join(layout.root, relative);
    const file = (name: string) => `${dir}/${name}`; // one join per group: format plans hundreds
    const need = (controller: string) => {
      if (!layout.controllers.has(controller)) throw new CgroupControllerMissing(controller, `in the cgroup2 hierarchy at ${layout.root}`);
    };
    if (limits.cpuWeight !== undefined) {
      need('cpu');
      writes.push({ file: file('cpu.weight'), value: String(limits.cpuWeight ?? 100) });
    }
    if (limits.cpuQuotaPercent !== undefined) {
      need('cpu');
      const quota = limits.cpuQuotaPercent === null ? 'max' : String(Math.round((limits.cpuQuotaPercent * CPU_PERIOD_USEC) / 100));
      writes.push({ file: file('cpu.max'), value: `${quota} ${CPU_PERIOD_USEC}` });
    }
    if (limits.memoryMax !== undefined) {
      need('memory');
      writes.push({ file: file('memory.max'), value: limits.memoryMax === null ? 'max' : String(limits.memoryMax) });
    }
    if (limits.pidsMax !== undefined) {
      need('pids');
      writes.push({ file: file('pids.max'), value: limits.pidsMax === null ? 'max' : String(limits.pidsMax) });
    }
    return writes;
  }
  const dirs = new Map<V1Controller, string>();
  const at = (controller: V1Controller, file: string) => {
    let dir = dirs.get(controller);
    if (dir === undefined) {
      const mount = layout.mounts.get(controller);
      if (!mount) throw new CgroupControllerMissing(controller, 'as a cgroup v1 hierarchy');
      dir = path.join(mount, relative);
      dirs.set(controller, dir);
    }
    return `${dir}/${file}`;
  };
  if (limits.cpuWeight !== undefined) {
    const shares = Math.max(2, Math.round(((limits.cpuWeight ?? 100) * 1024) / 100));
    writes.push({ file: at('cpu', 'cpu.shares'), value: String(shares) });
  }
  if (limits.cpuQuotaPercent !== undefined) {
    writes.push({ file: at('cpu', 'cpu.cfs_period_us'), value: String(CPU_PERIOD_USEC) });
    const quota = limits.cpuQuotaPercent === null ? '-1' : String(Math.round((limits.cpuQuotaPercent * CPU_PERIOD_USEC) / 100));
    writes.push({ file: at('cpu', 'cpu.cfs_quota_us'), value: quota });
  }
  if (limits.memoryMax !== undefined) {
    writes.push({ file: at('memory', 'memory.limit_in_bytes'), value: limits.memoryMax === null ? V1_UNLIMITED : String(limits.memoryMax) });
  }
  if (limits.pidsMax !== undefined) {
    writes.push({ file: at('pids', 'pids.max'), value: limits.pidsMax === null ? 'max' : String(limits.pidsMax) });
  }
  return writes;
}
