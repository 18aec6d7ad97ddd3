// Which processes belong to which partition: every process whose real uid is
// a partition user's. Each partition has a user of its own (format), so this
// rule catches everything the partition runs — supervisord programs, their
// children, processes supervisord restarted later (which start in
// supervisord's own group), cron-like helpers — without wrapping commands.
import { readdirSync, readFileSync } from 'node:fs';
import type { CgroupTree } from './group.js';

/** Real uid of each process, from /proc/<pid>/status. Pure on the given texts. */
export function realUid(statusText: string): number | undefined {
  const match = /^Uid:\s+(\d+)/m.exec(statusText);
  return match ? Number(match[1]) : undefined;
}

/** Pids whose real uid is one of `uids`, grouped by uid (processes that vanish meanwhile are skipped). */
export function processesOfUsers(uids: ReadonlySet<number>, proc = '/proc'): Map<number, number[]> {
  const out = new Map<number, number[]>();
  if (uids.size === 0) return out;
  for (const name of readdirSync(proc)) {
    if (!/^\d+$/.test(name)) continue;
    let text: string;
    try {
      text = readFileSync(`${proc}/${name}/status`, 'utf8');
    } catch {
      continue; // exited
    }
    const uid = realUid(text);
    if (uid === undefined || !uids.has(uid)) continue;
    const list = out.get(uid) ?? [];
    list.push(Number(name));
    out.set(uid, list);
  }
  return out;
}

/**
 * Moves the given processes into group `id`, skipping those already there and
 * those that exited meanwhile. Returns how many were moved.
 */
function moveIntoGroup(tree: CgroupTree, id: string, pids: readonly number[], warn: (message: string) => void): number {
  const inside = new Set(tree.processes(id));
  let moved = 0;
  for (const pid of pids) {
    if (inside.has(pid)) continue;
    try {
      tree.addProcess(id, pid);
      inside.add(pid);
      moved += 1;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ESRCH') warn(`cannot move process ${pid} of ${id} into its cgroup: ${(error as Error).message}`);
    }
  }
  return moved;
}

/**
 * Moves every process of each partition's user into the partition's group
 * (idempotent: processes already there are left alone). Returns how many were
 * moved. A group that does not exist (format not run, cgroups off) is skipped.
 */
export function attachPartitionProcesses(
  tree: CgroupTree,
  partitions: readonly { id: string; uid: number | null }[],
  warn: (message: string) => void,
): number {
  const byUid = new Map<number, string>();
  for (const p of partitions) if (p.uid !== null && p.uid !== 0) byUid.set(p.uid, p.id);
  let moved = 0;
  for (const [uid, list] of processesOfUsers(new Set(byUid.keys()))) {
    const id = byUid.get(uid) as string;
    if (tree.exists(id)) moved += moveIntoGroup(tree, id, list, warn);
  }
  return moved;
}
