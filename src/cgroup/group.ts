// Effects on per-partition control groups: create, limit, place processes,
// read usage, remove. Every operation is idempotent. Groups live under one
// parent ("slapos" by default) so that the node's groups are easy to find and
// never mixed with systemd's.
import path from 'node:path';
import { native } from '../native/index.js';
import { detectLayout, groupDirectories, type CgroupLayout } from './layout.js';
import { usageFromContents, usageSources, type CgroupUsage } from './counters.js';
import { planLimitWrites, type CgroupLimits } from './limits.js';
import { groupPids, killGroup, signalGroup, type KillResult } from './kill.js';

const GROUP_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export class CgroupTree {
  constructor(
    readonly layout: CgroupLayout,
    /** Parent group of every partition group, relative to each hierarchy's root. */
    readonly parent = 'slapos',
  ) {
    if (!GROUP_NAME.test(parent)) throw new Error(`invalid cgroup parent name ${JSON.stringify(parent)}`);
  }

  private relative(name: string): string {
    if (!GROUP_NAME.test(name)) throw new Error(`invalid cgroup name ${JSON.stringify(name)} (letters, digits, _ . - only)`);
    return path.join(this.parent, name);
  }

  /** Directories of the group in every hierarchy. */
  directories(name: string): string[] {
    return groupDirectories(this.layout, this.relative(name));
  }

  /** The group's v1 freezer directory, when that hierarchy is mounted. */
  private freezerDirectory(name: string): string | undefined {
    const mount = this.layout.kind === 'hybrid' ? this.layout.mounts.get('freezer') : undefined;
    return mount === undefined ? undefined : path.join(mount, this.relative(name));
  }

  /**
   * The directories a process joins: all, but the freezer one only where it
   * exists — a group made before the freezer hierarchy was used keeps
   * working (killed by signal rounds) until format makes it there too.
   */
  private joinable(name: string): string[] {
    const dirs = this.directories(name);
    const freezer = this.freezerDirectory(name);
    if (freezer === undefined || !dirs.includes(freezer)) return dirs;
    return native().cgroupReadValues([path.join(freezer, 'cgroup.procs')])[0] === null ? dirs.filter((d) => d !== freezer) : dirs;
  }

  /** Creates the parent and the group where missing. Returns true if anything was created. */
  create(name: string): boolean {
    const addon = native();
    let created = false;
    for (const dir of groupDirectories(this.layout, this.parent)) created = addon.cgroupMake(dir) || created;
    if (this.layout.kind === 'unified') this.delegateControllers();
    for (const dir of this.directories(name)) created = addon.cgroupMake(dir) || created;
    return created;
  }

  /** v2: enable the controllers we limit with for the parent's children (root → parent → group). */
  private delegateControllers(): void {
    if (this.layout.kind !== 'unified') return;
    const wanted = ['cpu', 'memory', 'pids', 'io'].filter((c) => this.layout.kind === 'unified' && this.layout.controllers.has(c));
    if (wanted.length === 0) return;
    const value = wanted.map((c) => `+${c}`).join(' ');
    const addon = native();
    addon.cgroupWrite(path.join(this.layout.root, 'cgroup.subtree_control'), value);
    addon.cgroupWrite(path.join(this.layout.root, this.parent, 'cgroup.subtree_control'), value);
  }

  /** The group is there in every hierarchy (the freezer one optional, see joinable). */
  exists(name: string): boolean {
    const freezer = this.freezerDirectory(name);
    const required = this.directories(name).filter((dir) => dir !== freezer);
    return native().cgroupReadValues(required.map((dir) => path.join(dir, 'cgroup.procs'))).every((v) => v !== null);
  }

  /** Applies limits (undefined keys untouched, null = unlimited). */
  setLimits(name: string, limits: CgroupLimits): void {
    const addon = native();
    for (const write of planLimitWrites(this.layout, this.relative(name), limits)) addon.cgroupWrite(write.file, write.value);
  }

  /** Moves a process (all its threads) into the group, in every hierarchy. */
  addProcess(name: string, pid: number): void {
    if (!Number.isInteger(pid) || pid <= 0) throw new Error(`invalid pid ${pid}`);
    const addon = native();
    for (const dir of this.joinable(name)) addon.cgroupWrite(path.join(dir, 'cgroup.procs'), String(pid));
  }

  /**
   * Pids in the group and its sub-groups (executor runs), from the first
   * hierarchy; they are the same in all.
   */
  processes(name: string): number[] {
    const [dir] = this.directories(name);
    return dir === undefined ? [] : groupPids(dir);
  }

  usage(name: string): CgroupUsage {
    return this.usageOf([name]).get(name) as CgroupUsage;
  }

  /** Usage of many groups with a single native call (the collect step reads hundreds). */
  usageOf(names: readonly string[]): Map<string, CgroupUsage> {
    const perGroup = names.map((name) => usageSources(this.layout, this.relative(name)));
    const contents = native().cgroupReadValues(perGroup.flatMap((list) => list.map((s) => s.file)));
    const out = new Map<string, CgroupUsage>();
    let offset = 0;
    names.forEach((name, i) => {
      const list = perGroup[i] ?? [];
      out.set(name, usageFromContents(list, contents.slice(offset, offset + list.length)));
      offset += list.length;
    });
    return out;
  }

  /**
   * Removes the group from every hierarchy. Returns true if anything was
   * removed. Fails with EBUSY (naming the directory) while processes remain.
   */
  remove(name: string): boolean {
    let removed = false;
    for (const dir of this.directories(name)) removed = native().cgroupRemove(dir) || removed;
    return removed;
  }

  /**
   * Directories of `name` (or of its sub-group `child`, e.g. one executor
   * run) in every hierarchy. Sub-groups get no controller of their own: the
   * partition's limits apply to its whole subtree (v2: the partition's
   * subtree_control stays empty, so its own tasks and its sub-groups' may mix).
   */
  subDirectories(name: string, child?: string): string[] {
    const dirs = this.joinable(name);
    if (child === undefined) return dirs;
    if (!GROUP_NAME.test(child)) throw new Error(`invalid cgroup name ${JSON.stringify(child)}`);
    return dirs.map((dir) => path.join(dir, child));
  }

  /** The cgroup.procs files a process writes "0" to in order to join (slapos-launch --cgroup). */
  procsFiles(name: string, child?: string): string[] {
    return this.subDirectories(name, child).map((dir) => path.join(dir, 'cgroup.procs'));
  }

  createChild(name: string, child: string): void {
    for (const dir of this.subDirectories(name, child)) native().cgroupMake(dir);
  }

  /** Removes a sub-group (false when absent); EBUSY while tasks remain. */
  removeChild(name: string, child: string): boolean {
    let removed = false;
    for (const dir of this.subDirectories(name, child)) removed = native().cgroupRemove(dir) || removed;
    return removed;
  }

  /** Sends `signal` to every task of the group (and sub-groups) once. */
  signal(name: string, signal: number, child?: string): number {
    const [dir] = this.subDirectories(name, child);
    return dir === undefined ? 0 : signalGroup(dir, signal);
  }

  /** Kills every task of the group and its sub-groups (cgroup.kill, or a signal loop on v1) until empty. */
  async kill(name: string, child?: string, timeoutMs?: number): Promise<KillResult> {
    const [dir] = this.subDirectories(name, child);
    if (dir === undefined) return { killed: 0, left: [] };
    const freezer = this.freezerDirectory(name);
    const freezerDir = freezer === undefined ? undefined : path.join(freezer, ...(child === undefined ? [] : [child]));
    return killGroup(dir, timeoutMs, freezerDir);
  }

  /** Removes the parent group (when it has no groups left). Returns true if anything was removed. */
  removeParent(): boolean {
    let removed = false;
    for (const dir of groupDirectories(this.layout, this.parent)) removed = native().cgroupRemove(dir) || removed;
    return removed;
  }
}

let detected: CgroupLayout | null | undefined;

/**
 * The cgroup a partition's processes are born in, for the executor; undefined
 * when cgroups are unusable or format made no group for it (then runs are
 * contained by process tree only). The layout is detected once per process.
 */
export function partitionCgroup(id: string, parent = 'slapos'): { tree: CgroupTree; group: string } | undefined {
  if (detected === undefined) {
    try {
      detected = detectLayout();
    } catch {
      detected = null;
    }
  }
  if (detected === null) return undefined;
  try {
    const tree = new CgroupTree(detected, parent);
    // Reached through a transient ancestor's root (under `ip netns exec`): a
    // path a later process (supervisord's programs) could not rely on.
    if (tree.directories(id).some((dir) => dir.startsWith('/proc/') && !dir.startsWith('/proc/1/'))) return undefined;
    return tree.exists(id) ? { tree, group: id } : undefined;
  } catch {
    return undefined;
  }
}
