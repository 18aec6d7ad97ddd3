// Running zc.buildout as a subprocess: which command, as whom, in which
// environment, and the error that carries its output (slapgrid.md §3.2).
import { closeSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../util/log.js';
import { runAs } from '../executor/index.js';
import type { CgroupTree } from '../cgroup/group.js';
import type { BuildoutForkServer } from '../executor/fork-server.js';

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
export function buildoutCommand(configured: string | undefined, readFirstLine: (file: string) => string = firstLine): string[] {
  if (configured === undefined || configured === '') return [SYSTEM_PYTHON, BUILDOUT_LAUNCHER];
  if (configured.endsWith('.py')) return [SYSTEM_PYTHON, configured];
  let line: string;
  try {
    line = readFirstLine(configured);
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
  /** With `user`: its supplementary groups (initgroups, the executor's rule); false: none. */
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
  /** The partition's cgroup (instance buildout): buildout is born in it. */
  cgroup?: { tree: CgroupTree; group: string } | undefined;
  /** Added to the clean environment (the instance loop's SLAPGRID_INSTANCE_ROOT). */
  env?: Record<string, string> | undefined;
  /** Each output line, also (terminal progress). */
  onLine?: ((line: string) => void) | undefined;
  /** PR_SET_NO_NEW_PRIVS (instance buildouts). */
  noNewPrivs?: boolean;
  /**
   * The pass's fork server: used when `command` is the node's own launcher
   * (a release's bin/buildout or [slapos] buildout is always exec'd).
   */
  forkServer?: BuildoutForkServer | undefined;
}

/** The node's own launcher, the only command the fork server stands for. */
export function isNodeLauncher(command: readonly string[]): boolean {
  return command.length === 2 && command[0] === SYSTEM_PYTHON && command[1] === BUILDOUT_LAUNCHER;
}

/**
 * Runs buildout through the node's one executor (src/executor): clean
 * environment, umask 027, stdin closed, its own session, output logged line
 * by line at debug level and kept for the error; at the timeout the whole
 * process tree is killed.
 */
export async function runBuildout(options: RunBuildoutOptions): Promise<string> {
  if (options.command.length === 0) throw new Error('empty buildout command');
  const socket = options.forkServer && isNodeLauncher(options.command) ? await options.forkServer.socket() : undefined;
  const result = await runAs({
    argv: [...options.command, ...options.args],
    // Not root (development): as ourselves.
    user: options.user ? { ...options.user, home: options.home } : undefined,
    initGroups: options.initGroups !== false,
    umask: 0o027,
    env: { HOME: options.home, PYTHONNOUSERSITE: 'true', ...options.env },
    cwd: options.cwd,
    timeoutMs: options.timeout,
    killGraceMs: 10_000,
    maxOutput: OUTPUT_TAIL_BYTES,
    cgroup: options.cgroup,
    noNewPrivs: options.noNewPrivs ?? false,
    forkServer: socket === undefined ? undefined : { socket, args: options.args },
    onLine: (line) => {
      options.log.debug({ label: options.label }, line);
      options.onLine?.(line);
    },
  });
  options.log.debug({ label: options.label, via: result.via, exit_code: result.exitCode, duration_ms: Math.round(result.duration * 1000) }, 'buildout ended');
  const output = result.output;
  if (result.spawnError !== undefined || result.exitCode !== 0 || result.timedOut) {
    const why = result.timedOut
      ? `${output}\n(timed out after ${(options.timeout ?? 0) / 1000} s: process tree killed)`
      : result.spawnError !== undefined ? `${output}${result.spawnError}` : result.signal ? `${output}\n(killed by ${result.signal})` : output;
    throw new BuildoutFailedError(options.cwd, why.trimEnd(), result.exitCode ?? undefined);
  }
  return output;
}
