// Running zc.buildout as a subprocess: which command, as whom, in which
// environment, and the error that carries its output (slapgrid.md §3.2).
import { closeSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { Logger } from '../util/log.js';
import { killProcessTree } from '../util/process-tree.js';

/** Debian's interpreter, not whatever `python3` is first on PATH (pyenv shims, venvs). */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/** lib/buildout-launcher.py of this package (dist/src/software → repository root). */
export const BUILDOUT_LAUNCHER = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'lib', 'buildout-launcher.py',
);

/** How much of buildout's output an error keeps (the reference keeps all; masters store it). */
const OUTPUT_TAIL_BYTES = 64 * 1024;

export class BuildoutFailedError extends Error {
  constructor(
    readonly directory: string,
    readonly output: string,
    readonly exitCode: number | undefined,
  ) {
    super(`Failed to run buildout profile in directory '${directory}' (${exitCode === undefined ? 'not started' : `exit ${exitCode}`}):\n${output}\n`);
    this.name = 'BuildoutFailedError';
  }
}

function firstLine(file: string): string {
  const buffer = Buffer.alloc(512);
  const fd = openSync(file, 'r');
  try {
    const size = readSync(fd, buffer, 0, buffer.length, 0);
    return buffer.subarray(0, size).toString('utf8').split('\n')[0] ?? '';
  } finally {
    closeSync(fd);
  }
}

/**
 * The command that runs buildout: [slapos] buildout when set, else our
 * launcher with the system Python. A script is run through the interpreter
 * of its shebang (as the reference: long shebangs of deep software paths
 * exceed the kernel's limit); a .py file through the system Python.
 */
export function buildoutCommand(configured: string | undefined): string[] {
  if (configured === undefined || configured === '') return [SYSTEM_PYTHON, BUILDOUT_LAUNCHER];
  if (configured.endsWith('.py')) return [SYSTEM_PYTHON, configured];
  let line: string;
  try {
    line = firstLine(configured);
  } catch (error) {
    throw new Error(`[slapos] buildout = ${configured}: cannot read it: ${(error as Error).message}`);
  }
  if (!line.startsWith('#!')) return [configured];
  const words = line.slice(2).trim().split(/\s+/).filter((word) => word !== '');
  return [...words, configured];
}

export interface RunBuildoutOptions {
  command: string[];
  args: string[];
  cwd: string;
  /** Run as this user (when we are root); HOME is `home`. */
  user?: { uid: number; gid: number; name: string } | undefined;
  /** With `user`: also its supplementary groups (initgroups, through setpriv). */
  initGroups?: boolean;
  home: string;
  log: Logger;
  /** Prefix of logged output lines, e.g. the release hash. */
  label: string;
  /**
   * Milliseconds; none by default (software builds take long). On expiry the
   * whole process tree is stopped and killed (partition_timeout), not only
   * the buildout process.
   */
  timeout?: number | undefined;
  /** Added to the clean environment (the instance loop's SLAPGRID_INSTANCE_ROOT). */
  env?: Record<string, string> | undefined;
}

/**
 * Runs buildout with a clean environment, umask 027, stdin closed and
 * stdout+stderr merged, logged line by line at debug level and kept for the
 * error. Node cannot set a child's umask, hence the /bin/sh wrapper.
 */
export async function runBuildout(options: RunBuildoutOptions): Promise<string> {
  const [program, ...programArgs] = options.command;
  if (program === undefined) throw new Error('empty buildout command');
  const env: Record<string, string> = {
    HOME: options.home,
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
    PYTHONNOUSERSITE: 'true',
  };
  if (options.user) Object.assign(env, { USER: options.user.name, LOGNAME: options.user.name });
  if (options.env) Object.assign(env, options.env);
  const shell = ['/bin/sh', '-c', 'umask 027 && exec "$@"', 'buildout', program, ...programArgs, ...options.args];
  // Node drops every supplementary group with uid/gid; instances need theirs
  // (the software group, to read the release), as the reference's initgroups.
  const viaSetpriv = options.user !== undefined && options.initGroups === true;
  const argv = viaSetpriv
    ? ['/usr/bin/setpriv', `--reuid=${options.user!.uid}`, `--regid=${options.user!.gid}`, '--init-groups', '--', ...shell]
    : shell;
  const child = execa(argv[0]!, argv.slice(1), {
    cwd: options.cwd,
    env,
    extendEnv: false,
    uid: viaSetpriv ? undefined : options.user?.uid,
    gid: viaSetpriv ? undefined : options.user?.gid,
    stdin: 'ignore',
    all: true,
    reject: false,
    buffer: false,
    // Its own session, so that the tree can be found and killed as a whole.
    detached: options.timeout !== undefined,
    forceKillAfterDelay: 10_000,
    cleanup: true,
  });
  let timedOut = false;
  const timer = options.timeout === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    if (child.pid !== undefined) killProcessTree(child.pid);
  }, options.timeout);
  let output = '';
  let pending = '';
  child.all?.setEncoding('utf8');
  child.all?.on('data', (chunk: string) => {
    output += chunk;
    if (output.length > 2 * OUTPUT_TAIL_BYTES) output = output.slice(-OUTPUT_TAIL_BYTES);
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) options.log.debug(`[${options.label}] ${line}`);
  });
  const result = await child.finally(() => clearTimeout(timer));
  if (pending !== '') options.log.debug(`[${options.label}] ${pending}`);
  const tail = output.length > OUTPUT_TAIL_BYTES ? `…\n${output.slice(-OUTPUT_TAIL_BYTES)}` : output;
  if (result.failed || timedOut) {
    const why = timedOut ? `${tail}\n(timed out after ${(options.timeout ?? 0) / 1000} s: process tree killed)` : result.exitCode === undefined ? `${tail}${result.message}` : tail;
    throw new BuildoutFailedError(options.cwd, why.trimEnd(), result.exitCode);
  }
  return output;
}
