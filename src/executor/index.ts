// The one executor for code that belongs to a partition or a software
// release (buildout, promises, etc/report scripts, sbin/destroy, prerm):
// docs/design.md, "One executor".
//
// - born in a cgroup of its own, a sub-group of the partition's (`cgroup`):
//   slapos-launch (native/launch.c) joins it before exec, so limits apply
//   from the first instruction and nothing the run starts can leave it
//   (setsid and double forks included). At the timeout SIGTERM to every task
//   of the sub-group, then, after `killGraceMs`, the sub-group is killed
//   (cgroup/kill.ts); what is left behind when the main process exits is
//   killed too, and the sub-group removed. Without a partition cgroup
//   (cgroups off, format not run) the same happens by process tree
//   (util/process-tree.ts: descendants and session members);
// - one rule for groups: as another user, through slapos-launch, with that
//   user's supplementary groups from the user database (initgroups, as the
//   reference's dropPrivileges); `initGroups: false` gives none;
// - a clean environment: only what the caller passes (plus HOME, USER,
//   LOGNAME, PATH, LANG defaults);
// - umask set for the child only (set around the synchronous fork);
// - instance buildouts may instead be forked by the pass's buildout fork
//   server (`forkServer`, ./fork-server.ts): only as root, as another user and
//   in a run sub-group, where its child gets the same containment; the
//   process spawned is then slapos-buildout-client, which lives as long as
//   the child, so everything below applies unchanged;
// - stdin closed, stdout and stderr both kept (callers that need one ordered stream wrap with `sh -c 'exec "$0" 2>&1'`), lines to `onLine`, output
//   capped to the last `maxOutput` bytes.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { killProcessTree, processTree } from '../util/process-tree.js';
import { buildoutClientPath, launcherPath } from '../native/index.js';
import type { CgroupTree } from '../cgroup/group.js';

export interface RunUser {
  uid: number;
  gid: number;
  name: string;
  home: string;
}

export interface RunAsOptions {
  argv: readonly string[];
  /** Run as this user (only when we are root; otherwise as ourselves). */
  user?: RunUser | undefined;
  /**
   * With `user`: its supplementary groups from the user database
   * (initgroups, the reference's dropPrivileges); default true. false: none.
   */
  initGroups?: boolean;
  /** Default 0o022. */
  umask?: number;
  /** The whole environment besides HOME/USER/LOGNAME/PATH/LANG defaults. */
  env?: Record<string, string>;
  /** `env` is the whole environment, without the defaults. */
  exactEnv?: boolean;
  cwd: string;
  /** Undefined: no timeout (software builds). */
  timeoutMs?: number | undefined;
  /** Between SIGTERM and SIGKILL at the timeout; default 1 s. */
  killGraceMs?: number;
  onLine?: (line: string) => void;
  /** Bytes of output kept (the end); default 64 KiB. */
  maxOutput?: number;
  /** Refuse uid/gid 0 (partition code); default true when `user` is set. */
  refuseRoot?: boolean;
  /** The partition's cgroup: the run is born in a sub-group of it and killed with it (when it exists and we are root). */
  cgroup?: { tree: CgroupTree; group: string } | undefined;
  /** With `user`: PR_SET_NO_NEW_PRIVS before exec (instance buildouts). */
  noNewPrivs?: boolean;
  /**
   * Run by a child of the buildout fork server (./fork-server.ts) instead of
   * exec'ing `argv`: `args` are buildout's arguments. Used only as root, as
   * another user and in a run sub-group (the same containment as the plain
   * path, proven by test/integration/fork-server.test.ts); otherwise `argv` is run.
   */
  forkServer?: { socket: string; args: readonly string[] } | undefined;
}

export interface RunResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** The last maxOutput bytes of stdout+stderr. */
  output: string;
  /** The program could not be started (ENOENT, EACCES). */
  spawnError?: string | undefined;
  /** Seconds. */
  duration: number;
  /** Processes of the tree killed after the main one exited or at the timeout. */
  killed: number;
  /** How it ran: exec'd through slapos-launch (or directly), or forked by the buildout fork server. */
  via: 'exec' | 'fork-server';
}

export const DEFAULT_MAX_OUTPUT = 64 * 1024;
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';
/** After the main process exited, how long its output may still flow. */
const DRAIN_MS = 2_000;

/**
 * The argv actually spawned: through slapos-launch when switching user or
 * joining a cgroup (`procs`: the cgroup.procs files to join), as root only
 * (pure; tested).
 */
export function commandLine(
  options: Pick<RunAsOptions, 'argv' | 'user' | 'initGroups' | 'noNewPrivs'>, asRoot: boolean, procs: readonly string[] = [], launcher = launcherPath,
): string[] {
  if (options.argv.length === 0) throw new Error('runAs: empty argv');
  if (!asRoot || (!options.user && procs.length === 0)) return [...options.argv];
  return [launcher, ...launchOptions(options, procs), '--', ...options.argv];
}

/** slapos-launch's and slapos-buildout-client's common options. */
function launchOptions(options: Pick<RunAsOptions, 'user' | 'initGroups' | 'noNewPrivs'>, procs: readonly string[]): string[] {
  const u = options.user;
  return [
    ...procs.flatMap((file) => ['--cgroup', file]),
    ...(u ? ['--uid', String(u.uid), '--gid', String(u.gid), ...(options.initGroups === false ? [] : ['--init-groups'])] : []),
    ...(u && options.noNewPrivs ? ['--no-new-privs'] : []),
  ];
}

/** The argv of a run through the fork server: its client, in the run's sub-group (pure; tested). */
export function forkServerCommandLine(
  options: Pick<RunAsOptions, 'user' | 'initGroups' | 'noNewPrivs'>, server: { socket: string; args: readonly string[] }, procs: readonly string[], client = buildoutClientPath,
): string[] {
  return [client, '--socket', server.socket, ...launchOptions(options, procs), '--', ...server.args];
}

let runs = 0;

/** A sub-group of the partition's cgroup for one run; undefined without one. */
function runGroup(options: RunAsOptions, asRoot: boolean): { tree: CgroupTree; group: string; child: string } | undefined {
  const c = options.cgroup;
  if (!c || !asRoot) return undefined;
  try {
    if (!c.tree.exists(c.group)) return undefined;
    const child = `run-${process.pid}-${++runs}`;
    c.tree.createChild(c.group, child);
    return { ...c, child };
  } catch {
    return undefined; // cgroups unusable: the process-tree fallback
  }
}

/** Kills what is left of the run's sub-group and removes it; returns how many were killed. */
async function endRunGroup(g: { tree: CgroupTree; group: string; child: string }): Promise<number> {
  const { killed } = await g.tree.kill(g.group, g.child);
  for (let i = 0; i < 50; i++) {
    try {
      g.tree.removeChild(g.group, g.child);
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20)); // tasks still exiting
    }
  }
  return killed;
}

/** The child's environment (pure; tested). */
export function environment(options: Pick<RunAsOptions, 'user' | 'env' | 'exactEnv'>): Record<string, string> {
  if (options.exactEnv) return { ...options.env };
  const env: Record<string, string> = { PATH: DEFAULT_PATH, LANG: 'C.UTF-8' };
  if (options.user) Object.assign(env, { HOME: options.user.home, USER: options.user.name, LOGNAME: options.user.name });
  return { ...env, ...options.env };
}

function signalTree(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // empty group
  }
  for (const member of processTree(pid)) {
    if (member === pid) continue;
    try {
      process.kill(member, sig);
    } catch {
      // gone
    }
  }
}

export function runAs(options: RunAsOptions): Promise<RunResult> {
  const asRoot = process.getuid?.() === 0;
  if (options.user && (options.refuseRoot ?? true) && (options.user.uid === 0 || options.user.gid === 0)) {
    return Promise.reject(new Error(`refusing to run ${options.argv[0]} as root (user ${options.user.name})`));
  }
  const sub = runGroup(options, asRoot);
  const procs = sub ? sub.tree.procsFiles(sub.group, sub.child) : [];
  // The fork server only where its child is contained as the plain path's process would be.
  const via = options.forkServer && sub && options.user ? 'fork-server' : 'exec';
  const argv = via === 'fork-server' ? forkServerCommandLine(options, options.forkServer!, procs) : commandLine(options, asRoot, procs);
  const maxOutput = options.maxOutput ?? DEFAULT_MAX_OUTPUT;
  const started = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  return new Promise((resolve) => {
    let output = '';
    let pending = '';
    let timedOut = false;
    let settled = false;
    let killed = 0;
    const previousUmask = process.umask(options.umask ?? 0o022);
    let child;
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        cwd: options.cwd,
        env: environment(options),
        detached: true, // setsid: own session and process group
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } finally {
      process.umask(previousUmask);
    }
    const line = (text: string) => options.onLine?.(text);
    const take = (chunk: string) => {
      output += chunk;
      if (output.length > 2 * maxOutput) output = output.slice(-maxOutput);
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) line(l);
    };
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timers: NodeJS.Timeout[] = [];
    const finish = (report: { exitCode: number | null; signal: NodeJS.Signals | null; spawnError?: string }) => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      if (pending !== '') line(pending);
      const kept = Buffer.byteLength(output) > maxOutput ? Buffer.from(output).subarray(-maxOutput).toString('utf8') : output;
      resolve({ ...report, output: kept, timedOut, duration: seconds(), killed, via });
    };
    child.on('error', (error) => {
      if (sub) void endRunGroup(sub);
      finish({ exitCode: null, signal: null, spawnError: error.message });
    });
    child.on('exit', async (exitCode, signal) => {
      const pid = child.pid;
      // Nothing of the run outlives its main process.
      if (sub) killed += await endRunGroup(sub);
      else if (pid !== undefined) killed += killProcessTree(pid).filter((p) => p !== pid).length;
      let open = 2;
      const drained = () => {
        if (--open === 0) finish({ exitCode, signal });
      };
      for (const stream of [child.stdout, child.stderr]) {
        if (stream.readableEnded || stream.destroyed) drained();
        else stream.once('close', drained);
      }
      timers.push(setTimeout(() => finish({ exitCode, signal }), DRAIN_MS));
    });
    if (child.pid !== undefined && options.timeoutMs !== undefined) {
      const pid = child.pid;
      timers.push(setTimeout(() => {
        timedOut = true;
        if (sub) sub.tree.signal(sub.group, constants.signals.SIGTERM, sub.child);
        else signalTree(pid, 'SIGTERM');
        timers.push(setTimeout(() => {
          if (sub) void sub.tree.kill(sub.group, sub.child).then((r) => { killed += r.killed; });
          else killed += killProcessTree(pid).length;
        }, options.killGraceMs ?? 1_000));
      }, options.timeoutMs));
    }
  });
}
