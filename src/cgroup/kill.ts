// Killing what runs for a partition, by what the kernel knows rather than by
// a /proc walk: every task of a cgroup (v2 `cgroup.kill`; v1: signal every
// listed task, repeat until the group is empty — a task that forks between
// two reads is caught by the next round, and a killed task forks no more),
// then every process of a uid anywhere. Each pid is signalled through a
// pidfd opened first and checked afterwards (still in the group, still that
// uid), so a reaped and reused pid is never hit.
import { closeSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { constants } from 'node:os';
import { native } from '../native/index.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pidsIn(procsFile: string): number[] {
  const [text] = native().cgroupReadValues([procsFile]);
  return (text ?? '').split('\n').filter((l) => l !== '').map(Number);
}

/** The group directory and every group below it (cgroupfs is root's: no hostile path here). */
export function groupAndDescendants(dir: string): string[] {
  const out = [dir];
  for (let i = 0; i < out.length; i++) {
    let entries;
    try {
      entries = readdirSync(out[i] as string, { withFileTypes: true });
    } catch {
      continue; // removed meanwhile
    }
    for (const entry of entries) if (entry.isDirectory()) out.push(path.join(out[i] as string, entry.name));
  }
  return out;
}

/** Pids of the tasks of `dir` and its descendant groups. */
export function groupPids(dir: string): number[] {
  return groupAndDescendants(dir).flatMap((d) => pidsIn(path.join(d, 'cgroup.procs')));
}

/**
 * Sends `signal` once to every task listed by `list`: pidfds opened first,
 * then the list read again; a pid still listed is the task whose pidfd we
 * hold (a reused pid would have been born elsewhere).
 */
function signalListed(list: () => number[], signal: number): number {
  const addon = native();
  const fds = list().map((pid) => ({ pid, fd: addon.pidfdOpen(pid) }));
  const still = new Set(list());
  let sent = 0;
  for (const { pid, fd } of fds) {
    if (fd < 0) continue;
    try {
      if (still.has(pid) && addon.pidfdSignal(fd, signal)) sent += 1;
    } finally {
      closeSync(fd);
    }
  }
  return sent;
}

/** Sends `signal` once to every task of the group directory `dir` and its sub-groups. */
export function signalGroup(dir: string, signal: number): number {
  return signalListed(() => groupPids(dir), signal);
}

export interface KillResult {
  /** Tasks signalled (v1) or found before cgroup.kill (v2). */
  killed: number;
  /** Pids still there at the end (the group could not be emptied in time). */
  left: number[];
}

/**
 * SIGKILL to every task of the group directory `dir` and below, until it is
 * empty or `timeoutMs` passed. `dir` is one hierarchy's directory of the
 * group (v1: the tasks of a group are the same in every hierarchy).
 */
export async function killGroup(dir: string, timeoutMs = 5_000): Promise<KillResult> {
  const deadline = Date.now() + timeoutMs;
  let killed = 0;
  const v2Kill = path.join(dir, 'cgroup.kill');
  let hasKill = isCgroup2(dir); // cgroup.kill: Linux ≥ 5.14

  for (;;) {
    const pids = groupPids(dir);
    if (pids.length === 0) return { killed, left: [] };
    if (hasKill) {
      try {
        native().cgroupWrite(v2Kill, '1');
        killed += pids.length;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        hasKill = false;
      }
    }
    if (!hasKill) killed += signalGroup(dir, constants.signals.SIGKILL);
    if (Date.now() > deadline) return { killed, left: groupPids(dir) };
    await sleep(10);
  }
}

function isCgroup2(dir: string): boolean {
  try {
    return native().cgroupFsType(dir) === 'cgroup2';
  } catch {
    return false;
  }
}

/** Pids whose real, effective or saved uid is `uid`. */
export function processesOfUid(uid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${name}/status`, 'utf8');
    } catch {
      continue;
    }
    const ids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(text);
    if (ids && ids.slice(1, 4).some((id) => Number(id) === uid)) out.push(Number(name));
  }
  return out;
}

/**
 * The last sweep: SIGKILL to every process of `uid` anywhere (outside any
 * cgroup too), until none is left or `timeoutMs` passed. Returns the pids
 * still there (empty: the user has no process left).
 */
export async function killUid(uid: number, timeoutMs = 5_000): Promise<{ killed: number; left: number[] }> {
  if (!Number.isInteger(uid) || uid <= 0) throw new Error(`refusing to kill every process of uid ${uid}`);
  const deadline = Date.now() + timeoutMs;
  let killed = 0;
  for (;;) {
    const pids = processesOfUid(uid);
    if (pids.length === 0) return { killed, left: [] };
    killed += signalListed(() => processesOfUid(uid), constants.signals.SIGKILL);
    if (Date.now() > deadline) return { killed, left: processesOfUid(uid) };
    await sleep(10);
  }
}
