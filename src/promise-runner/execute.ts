// Running one executable promise: as the partition user, in the partition,
// with a clean environment, stdout+stderr merged, and a timeout after which
// its whole process group is killed (slapgrid.md §6.2).
import { spawn } from 'node:child_process';
import type { ExecutionReport } from './types.js';

/** Output kept per run (the stored message keeps at most 5000 characters anyway). */
const OUTPUT_MAX_BYTES = 64 * 1024;
/** Between SIGTERM and SIGKILL at the timeout (the reference: 1 s). */
const TERM_GRACE_MS = 1_000;
/** After the promise exited, how long its output may still flow before we stop listening. */
const DRAIN_MS = 2_000;

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
}

/** Signals a whole process group; gone already is fine. */
function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is empty
  }
}

/**
 * Runs `file` and resolves when it exited (or was killed at the timeout).
 * The child leads its own session and process group (`detached`), so the
 * group signal reaches everything it started, unless something left the
 * session on purpose. Leftovers are killed after the promise exited too: a
 * check must not leave processes behind. The `/bin/sh` wrapper merges stderr
 * into stdout in order (one pipe), as the reference's legacy wrapper.
 */
export function executePromise(file: string, options: ExecuteOptions): Promise<ExecutionReport> {
  const started = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  return new Promise((resolve) => {
    let output = '';
    let pending = '';
    let timedOut = false;
    let settled = false;
    const asUser = process.getuid?.() === 0; // not root (root_check = false, development): we can only run as ourselves
    const shell = ['/bin/sh', '-c', 'exec "$0" "$@" 2>&1', file, ...(options.args ?? [])];
    const viaSetpriv = asUser && options.initGroups === true;
    const argv = viaSetpriv ? ['/usr/bin/setpriv', `--reuid=${options.uid}`, `--regid=${options.gid}`, '--init-groups', '--', ...shell] : shell;
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: options.cwd,
      env: options.env,
      ...(asUser && !viaSetpriv ? { uid: options.uid, gid: options.gid } : {}),
      detached: true,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const line = (text: string) => options.onLine?.(text);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      output += chunk;
      if (output.length > 2 * OUTPUT_MAX_BYTES) output = output.slice(-OUTPUT_MAX_BYTES);
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) line(l);
    });
    const timers: NodeJS.Timeout[] = [];
    const finish = (report: Omit<ExecutionReport, 'output' | 'duration' | 'timedOut'>) => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      if (pending !== '') line(pending);
      resolve({ ...report, output: output.length > OUTPUT_MAX_BYTES ? output.slice(-OUTPUT_MAX_BYTES) : output, timedOut, duration: seconds() });
    };
    child.on('error', (error) => finish({ exitCode: null, signal: null, spawnError: error.message }));
    child.on('exit', (exitCode, signal) => {
      const pid = child.pid;
      if (pid !== undefined) killGroup(pid, 'SIGKILL');
      // Children that escaped the group may hold the pipe: do not wait for them forever.
      const drained = () => finish({ exitCode, signal });
      if (child.stdout.readableEnded || child.stdout.destroyed) return drained();
      child.stdout.once('close', drained);
      timers.push(setTimeout(() => {
        child.stdout.destroy();
        drained();
      }, DRAIN_MS));
    });
    if (child.pid !== undefined) {
      const pid = child.pid;
      timers.push(setTimeout(() => {
        timedOut = true;
        killGroup(pid, 'SIGTERM');
        timers.push(setTimeout(() => killGroup(pid, 'SIGKILL'), TERM_GRACE_MS));
      }, options.timeoutMs));
    }
  });
}
