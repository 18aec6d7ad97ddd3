// Killing what runs for a partition, by what the kernel knows rather than by
// a /proc walk: every task of a cgroup (v2 `cgroup.kill`; v1 with the freezer
// controller: freeze the group, signal every task, thaw, repeat until empty —
// a frozen task cannot fork between the read and the signal; v1 without it:
// signal every listed task, repeat until the group is empty — a task that
// forks between two reads is caught by the next round, and a killed task
// forks no more), then every process of a uid anywhere. Each pid is signalled through a
// pidfd opened first and checked afterwards (still in the group, still that
// uid), so a reaped and reused pid is never hit.
import { closeSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { constants } from 'node:os';
import { native } from '../native/index.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

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

export type KillMethod = 'cgroup.kill' | 'freezer' | 'signals';

/** How a group is killed: v2 `cgroup.kill`; v1 by freezer where the group has a freezer directory, else signal rounds. Pure. */
export function killMethod(cgroup2: boolean, hasFreezer: boolean): KillMethod {
  if (cgroup2) return 'cgroup.kill';
  return hasFreezer ? 'freezer' : 'signals';
}

/** The effects of one v1 freezer kill (real: freezer.state and pidfds; unit tests: a fake). */
export interface FreezerIo {
  pids(): number[];
  /** Writes FROZEN (v1 freezes the sub-groups too) / THAWED to freezer.state. */
  freeze(): void;
  thaw(): void;
  /** freezer.state: FROZEN once every task is stopped (FREEZING meanwhile). */
  state(): string;
  /** SIGKILL to every listed task through pidfds; the number sent. */
  signalAll(): number;
  sleep(ms: number): Promise<void>;
  now(): number;
}

/** Waited for FROZEN before signalling anyway (a task in uninterruptible sleep keeps a group FREEZING). */
export const FREEZE_WAIT_MS = 1_000;

/**
 * The v1 freezer kill, one round at a time until the group is empty or the
 * deadline passed: freeze, wait for FROZEN (bounded), SIGKILL every task
 * (queued while frozen: none can fork meanwhile), thaw (always, so the
 * signals are delivered and the group is never left frozen).
 */
export async function freezeKill(io: FreezerIo, deadline: number): Promise<KillResult> {
  let killed = 0;
  for (;;) {
    if (io.pids().length === 0) return { killed, left: [] };
    io.freeze();
    try {
      const waitUntil = Math.min(deadline, io.now() + FREEZE_WAIT_MS);
      while (io.state() !== 'FROZEN' && io.now() < waitUntil) await io.sleep(5);
      killed += io.signalAll();
    } finally {
      io.thaw();
    }
    if (io.now() > deadline) {
      const left = io.pids();
      return { killed, left };
    }
    await io.sleep(10);
  }
}

/** The real FreezerIo of a group: its tasks are those of `dir` (any hierarchy) and of the freezer directory. */
function freezerIo(dir: string, freezerDir: string): FreezerIo {
  const stateFile = path.join(freezerDir, 'freezer.state');
  const pids = () => [...new Set([...groupPids(dir), ...groupPids(freezerDir)])];
  return {
    pids,
    freeze: () => native().cgroupWrite(stateFile, 'FROZEN'),
    thaw: () => native().cgroupWrite(stateFile, 'THAWED'),
    state: () => (native().cgroupReadValues([stateFile])[0] ?? '').trim(),
    signalAll: () => signalListed(pids, constants.signals.SIGKILL),
    sleep,
    now: () => Date.now(),
  };
}

/**
 * SIGKILL to every task of the group directory `dir` and below, until it is
 * empty or `timeoutMs` passed. `dir` is one hierarchy's directory of the
 * group (v1: the tasks of a group are the same in every hierarchy);
 * `freezerDir`, the group's v1 freezer directory when that controller is
 * mounted (used when it exists: groups made before it was are killed by
 * signal rounds).
 */
export async function killGroup(dir: string, timeoutMs = 5_000, freezerDir?: string): Promise<KillResult> {
  const deadline = Date.now() + timeoutMs;
  const hasFreezer = freezerDir !== undefined && native().cgroupReadValues([path.join(freezerDir, 'freezer.state')])[0] !== null;
  const method = killMethod(isCgroup2(dir), hasFreezer);
  if (method === 'freezer') return freezeKill(freezerIo(dir, freezerDir as string), deadline);
  let killed = 0;
  const v2Kill = path.join(dir, 'cgroup.kill');
  let hasKill = method === 'cgroup.kill'; // cgroup.kill: Linux ≥ 5.14

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
