// Which limits format enforces on a partition's cgroup (pure). A limit that is
// not configured is reset to unlimited on an existing group, so that removing
// a key from slapos.cfg lifts the limit on the next run; a group being created
// starts unlimited, and a controller the system lacks has nothing to reset.
import type { CgroupLayout } from '../cgroup/layout.js';
import type { CgroupLimits } from '../cgroup/limits.js';

const CONTROLLER: Record<keyof CgroupLimits, 'cpu' | 'memory' | 'pids'> = {
  cpuWeight: 'cpu',
  cpuQuotaPercent: 'cpu',
  memoryMax: 'memory',
  pidsMax: 'pids',
};

function hasController(layout: CgroupLayout, controller: 'cpu' | 'memory' | 'pids'): boolean {
  return layout.kind === 'unified' ? layout.controllers.has(controller) : layout.mounts.has(controller);
}

export function partitionLimits(configured: CgroupLimits, layout: CgroupLayout, groupExists: boolean): CgroupLimits {
  if (!groupExists) return configured;
  const out: CgroupLimits = { ...configured };
  for (const key of Object.keys(CONTROLLER) as (keyof CgroupLimits)[]) {
    if (out[key] === undefined && hasController(layout, CONTROLLER[key])) out[key] = null;
  }
  return out;
}

/** v1 memory.limit_in_bytes takes -1 and reads back as the page counter maximum. */
const V1_MEMORY_UNLIMITED = 2n ** 62n;

/** Whether the value read from a limit file already is the one to write. */
export function sameLimitValue(current: string | null | undefined, wanted: string): boolean {
  const value = (current ?? '').trim();
  if (value === wanted) return true;
  return wanted === '-1' && /^\d+$/.test(value) && BigInt(value) >= V1_MEMORY_UNLIMITED;
}
