// Which cgroup layout this machine has, and where each controller lives.
//  - unified (pure v2): one cgroup2 hierarchy at /sys/fs/cgroup, controllers
//    listed in cgroup.controllers;
//  - hybrid: v1 hierarchies mounted per controller (cpu, cpuacct, memory,
//    pids, blkio, …) under a tmpfs at /sys/fs/cgroup, as on Debian 12 hosts
//    booted with systemd's hybrid mode and on this project's CI machines.
import { readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';

/**
 * The v1 controllers partition groups are made in (hybrid layout). freezer
 * limits nothing: it lets a kill freeze the group first (kill.ts).
 */
export const V1_CONTROLLERS = ['cpu', 'cpuacct', 'memory', 'pids', 'blkio', 'freezer'] as const;
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
 * `ip netns exec` runs commands in a mount namespace with a fresh sysfs on
 * /sys, whose /sys/fs/cgroup is empty. The hierarchy is the same kernel
 * object, reachable (as root) through the root of a process that lives in
 * another mount namespace: pid 1, else the nearest ancestor (the shell or
 * unit that ran `ip netns exec`), as /proc/<pid>/root/sys/fs/cgroup.
 */
function layoutThroughOtherNamespace(): CgroupLayout | null {
  let own: string;
  try {
    own = readlinkSync('/proc/self/ns/mnt');
  } catch {
    return null;
  }
  for (const pid of [1, ...ancestors()]) {
    try {
      if (readlinkSync(`/proc/${pid}/ns/mnt`) === own) continue;
      const root = `/proc/${pid}/root`;
      const cgroupRoot = path.join(root, 'sys', 'fs', 'cgroup');
      if (native().cgroupFsType(cgroupRoot) === 'cgroup2') return unifiedLayout(cgroupRoot);
      const mounts = v1MountsFromMountinfo(readFileSync(`/proc/${pid}/mountinfo`, 'utf8'));
      if (mounts.size === 0) continue;
      const through = new Map<V1Controller, string>();
      for (const [controller, mount] of mounts) through.set(controller, path.join(root, mount));
      native().cgroupFsType(through.values().next().value as string); // reachable from here, or next candidate
      return { kind: 'hybrid', mounts: through };
    } catch {
      // gone, not ours to look into (pid 1 of a sandbox), or no cgroups there
    }
  }
  return null;
}

/** Parent, grandparent, … of this process (PPid of /proc/<pid>/status). */
function ancestors(): number[] {
  const out: number[] = [];
  let pid = process.ppid;
  while (pid > 1 && out.length < 64) {
    out.push(pid);
    try {
      pid = Number(/^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      break;
    }
  }
  return out;
}

/**
 * Detects the layout under `root`. A cgroup2 filesystem at `root` is the
 * unified layout; otherwise the v1 controller mounts are read from mountinfo.
 * When neither is visible at the default root (a fresh sysfs, as under
 * `ip netns exec`), the hierarchy is looked for through another mount
 * namespace (layoutThroughOtherNamespace).
 */
export function detectLayout(root = '/sys/fs/cgroup'): CgroupLayout {
  const type = native().cgroupFsType(root);
  if (type === 'cgroup2') return unifiedLayout(root);
  const mounts = v1MountsFromMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  if (mounts.size > 0) return { kind: 'hybrid', mounts };
  if (root === '/sys/fs/cgroup') {
    const other = layoutThroughOtherNamespace();
    if (other) return other;
  }
  throw new Error(
    `no cgroup hierarchy found: ${root} is ${type}, no cgroup v1 controller is mounted` +
      `${root === '/sys/fs/cgroup' ? ', and none is reachable through another mount namespace (/proc/<pid>/root)' : ''}`,
  );
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
