// Exclusive CPUs for partitions (the cpuset manager, managers.md §2), on both
// layouts:
//  - hybrid: the v1 cpuset hierarchy; one group <parent>/cpu<N> per granted
//    CPU, with cpuset.cpus = N; a requested process (all its threads, through
//    cgroup.procs) is moved there. The cpu/memory/pids hierarchies, where the
//    partition's limits are, are separate and keep the process.
//  - unified: a process has one group; moving it out of the partition's group
//    would drop its limits, and the partition group may not have children with
//    processes of its own. The granularity is then the partition: its group's
//    cpuset.cpus is set to the granted CPUs.
// The pure part (which files get which values) is planCpusetWrites.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';
import type { CgroupLayout } from './layout.js';

/** "0-3,8,10-11" -> [0,1,2,3,8,10,11] (the kernel's list format). */
export function parseCpuList(text: string): number[] {
  const out: number[] = [];
  for (const item of text.trim().split(',').filter((i) => i !== '')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(item.trim());
    if (!m) throw new Error(`bad cpu list item ${JSON.stringify(item)}`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    for (let i = a; i <= b; i++) out.push(i);
  }
  return out;
}

/** The v1 cpuset mount point from /proc/self/mountinfo text (pure), or undefined. */
export function cpusetMountFromMountinfo(mountinfo: string): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(' ');
    const [fstype, , options = ''] = line.slice(sep + 3).split(' ');
    if (fstype === 'cgroup' && fields[3] === '/' && options.split(',').includes('cpuset')) return fields[4];
  }
  return undefined;
}

export interface CpusetWrite {
  /** Directory to create first (idempotent). */
  mkdir?: string;
  file: string;
  value: string;
}

/** Files written to pin `pid` on `cpu` for partition `id` (pure). */
export function planCpusetWrites(
  target: { kind: 'hybrid'; mount: string; mems: string; allCpus: string } | { kind: 'unified'; root: string },
  parent: string, id: string, cpus: readonly number[], pid: number | undefined, cpu: number | undefined,
): CpusetWrite[] {
  if (target.kind === 'unified') {
    const group = path.join(target.root, parent, id);
    return [
      { file: path.join(target.root, 'cgroup.subtree_control'), value: '+cpuset' },
      { file: path.join(target.root, parent, 'cgroup.subtree_control'), value: '+cpuset' },
      { file: path.join(group, 'cpuset.cpus'), value: cpus.join(',') },
    ];
  }
  const parentDir = path.join(target.mount, parent);
  const writes: CpusetWrite[] = [
    // v1 refuses tasks in a cpuset whose cpus or mems are empty: fill the parent first.
    { mkdir: parentDir, file: path.join(parentDir, 'cpuset.cpus'), value: target.allCpus },
    { file: path.join(parentDir, 'cpuset.mems'), value: target.mems },
  ];
  if (cpu === undefined) return writes;
  const dir = path.join(parentDir, `cpu${cpu}`);
  writes.push({ mkdir: dir, file: path.join(dir, 'cpuset.cpus'), value: String(cpu) }, { file: path.join(dir, 'cpuset.mems'), value: target.mems });
  if (pid !== undefined) writes.push({ file: path.join(dir, 'cgroup.procs'), value: String(pid) });
  return writes;
}

export class Cpuset {
  private readonly target: Parameters<typeof planCpusetWrites>[0];

  constructor(layout: CgroupLayout, readonly parent = 'slapos', mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')) {
    if (layout.kind === 'unified') {
      this.target = { kind: 'unified', root: layout.root };
    } else {
      const mount = cpusetMountFromMountinfo(mountinfo);
      if (!mount) throw new Error('no cpuset hierarchy mounted (cgroup v1 cpuset controller)');
      const [cpus, mems] = native().cgroupReadValues([path.join(mount, 'cpuset.cpus'), path.join(mount, 'cpuset.mems')]);
      this.target = { kind: 'hybrid', mount, mems: (mems ?? '0').trim(), allCpus: (cpus ?? '0').trim() };
    }
  }

  get kind(): 'hybrid' | 'unified' {
    return this.target.kind;
  }

  /** Every CPU the host has (the root cpuset's list). */
  hostCpus(): number[] {
    const file = this.target.kind === 'unified' ? path.join(this.target.root, 'cpuset.cpus.effective') : path.join(this.target.mount, 'cpuset.cpus');
    const [text] = native().cgroupReadValues([file]);
    return parseCpuList(text ?? '');
  }

  /** Pins `pid` on `cpu` (hybrid) or confines partition `id` to `cpus` (unified). */
  pin(id: string, cpus: readonly number[], pid: number, cpu: number): void {
    const addon = native();
    for (const write of planCpusetWrites(this.target, this.parent, id, cpus, pid, cpu)) {
      if (write.mkdir) addon.cgroupMake(write.mkdir);
      addon.cgroupWrite(write.file, write.value);
    }
  }

  /** Pids currently in the group of `cpu` (hybrid), for status and release. */
  pinned(cpu: number): number[] {
    if (this.target.kind === 'unified') return [];
    const [text] = native().cgroupReadValues([path.join(this.target.mount, this.parent, `cpu${cpu}`, 'cgroup.procs')]);
    return (text ?? '').split('\n').filter((l) => l !== '').map(Number);
  }

  /** Gives the CPUs back: processes left return to the root cpuset, the groups go. */
  release(id: string, cpus: readonly number[]): void {
    const addon = native();
    if (this.target.kind === 'unified') {
      try {
        addon.cgroupWrite(path.join(this.target.root, this.parent, id, 'cpuset.cpus'), '');
      } catch { /* group gone with the partition */ }
      return;
    }
    for (const cpu of cpus) {
      const dir = path.join(this.target.mount, this.parent, `cpu${cpu}`);
      for (const pid of this.pinned(cpu)) {
        try {
          addon.cgroupWrite(path.join(this.target.mount, 'cgroup.procs'), String(pid));
        } catch { /* exited */ }
      }
      addon.cgroupRemove(dir);
    }
  }
}
