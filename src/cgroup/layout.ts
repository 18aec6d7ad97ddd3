// Which cgroup layout this machine has, and where each controller lives.
//  - unified (pure v2): one cgroup2 hierarchy at /sys/fs/cgroup, controllers
//    listed in cgroup.controllers;
//  - hybrid: v1 hierarchies mounted per controller (cpu, cpuacct, memory,
//    pids, blkio, …) under a tmpfs at /sys/fs/cgroup, as on Debian 12 hosts
//    booted with systemd's hybrid mode and on this project's CI machines.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';

/** The v1 controllers partition groups are made in (hybrid layout). */
export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids', 'blkio'] as const;
export type V1Controller = (typeof V1_CONTROLLERS)[number];

export type CgroupLayout =
  | { kind: 'unified'; root: string; controllers: ReadonlySet<string> }
  | { kind: 'hybrid'; mounts: ReadonlyMap<V1Controller, string> };

/**
 * The v1 mount point of each controller we use, from /proc/self/mountinfo
 * text. Pure, for tests. Co-mounted controllers (cpu,cpuacct) share a path.
 */
export function v1MountsFromMountinfo(mountinfo: string): Map<V1Controller, string> {
  const mounts = new Map<V1Controller, string>();
  for (const line of mountinfo.split('\n')) {
    // "<id> <parent> <maj:min> <root> <mount point> <opts> [optional...] - <fstype> <source> <super opts>"
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(' ');
    const [fstype, , superOptions = ''] = line.slice(sep + 3).split(' ');
    const mountPoint = fields[4];
    if (fstype !== 'cgroup' || !mountPoint || fields[3] !== '/') continue;
    for (const option of superOptions.split(',')) {
      const controller = V1_CONTROLLERS.find((c) => c === option);
      if (controller && !mounts.has(controller)) mounts.set(controller, unescapeMountPath(mountPoint));
    }
  }
  return mounts;
}

function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Detects the layout under `root`. A cgroup2 filesystem at `root` is the
 * unified layout; otherwise the v1 controller mounts are read from mountinfo.
 */
export function detectLayout(root = '/sys/fs/cgroup'): CgroupLayout {
  const type = native().cgroupFsType(root);
  if (type === 'cgroup2') return unifiedLayout(root);
  const mounts = v1MountsFromMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  if (mounts.size === 0) {
    throw new Error(`no cgroup hierarchy found: ${root} is ${type}, and no cgroup v1 controller is mounted`);
  }
  return { kind: 'hybrid', mounts };
}

/** A cgroup2 hierarchy at `root` (also used for the hybrid layout's "unified" mount in tests). */
export function unifiedLayout(root: string): CgroupLayout {
  const controllers = new Set(
    readFileSync(path.join(root, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter((c) => c !== ''),
  );
  return { kind: 'unified', root, controllers };
}

/** The directories one group occupies: one for v2, one per distinct v1 mount. */
export function groupDirectories(layout: CgroupLayout, relative: string): string[] {
  if (layout.kind === 'unified') return [path.join(layout.root, relative)];
  return [...new Set(layout.mounts.values())].map((mount) => path.join(mount, relative));
}
