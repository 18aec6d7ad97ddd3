// Running one executable promise: as the partition user, in the partition,
// with a clean environment, stdout+stderr merged, and a timeout after which
// its whole process tree is killed (slapgrid.md §6.2). The spawning itself is
// the node's one executor (src/executor).
import { runAs } from '../executor/index.js';
import { partitionCgroup } from '../cgroup/group.js';
import type { ExecutionReport } from './types.js';

/** Output kept per run (the stored message keeps at most 5000 characters anyway). */
const OUTPUT_MAX_BYTES = 64 * 1024;
/** Between SIGTERM and SIGKILL at the timeout (the reference: 1 s). */
const TERM_GRACE_MS = 1_000;

export interface ExecuteOptions {
  cwd: string;
  uid: number;
  gid: number;
  env: Record<string, string>;
  timeoutMs: number;
  /** Arguments after the file (plugin promises: the launcher and its request). */
  args?: string[] | undefined;
  /**
   * Also the user's supplementary groups (initgroups through setpriv, as the
   * reference's dropPrivileges): plugin promises read the release's eggs,
   * which the software group may be the only one to read. Needs a passwd entry.
   */
  initGroups?: boolean | undefined;
  /** Each line of output, as it comes. */
  onLine?: (line: string) => void;
  /** The partition whose cgroup the promise is born in (and killed with), and the cgroup parent. */
  partition?: { id: string; cgroupParent?: string | undefined } | undefined;
}

/**
 * Runs `file` and resolves when it exited (or was killed at the timeout).
 * Leftovers are killed after the promise exited too: a check must not leave
 * processes behind. The `/bin/sh` wrapper merges stderr into stdout in order
 * (one pipe), as the reference's legacy wrapper. Not root (root_check =
 * false, development): the executor runs it as ourselves.
 */
export async function executePromise(file: string, options: ExecuteOptions): Promise<ExecutionReport> {
  const result = await runAs({
    argv: ['/bin/sh', '-c', 'exec "$0" "$@" 2>&1', file, ...(options.args ?? [])],
    user: { uid: options.uid, gid: options.gid, name: options.env.USER ?? '', home: options.env.HOME ?? options.cwd },
    env: options.env,
    exactEnv: true,
    // Executables get no supplementary groups; plugin promises ask for the user's (initGroups).
    initGroups: options.initGroups === true,
    cwd: options.cwd,
    timeoutMs: options.timeoutMs,
    killGraceMs: TERM_GRACE_MS,
    cgroup: options.partition ? partitionCgroup(options.partition.id, options.partition.cgroupParent) : undefined,
    maxOutput: OUTPUT_MAX_BYTES,
    ...(options.onLine ? { onLine: options.onLine } : {}),
  });
  return {
    exitCode: result.exitCode, signal: result.signal, output: result.output, timedOut: result.timedOut, duration: result.duration,
    ...(result.spawnError !== undefined ? { spawnError: result.spawnError } : {}),
  };
}
