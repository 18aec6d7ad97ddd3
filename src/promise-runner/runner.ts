// Running the promises of one partition, one after another (slapgrid.md
// §6): plan (due or not) → execute → store result, cache and log → decide
// failure and bang. This is what the instance loop and `node promise` call.
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { relativeTo, unlinkBeneath } from '../safe-fs/index.js';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { userByUid } from '../users/user.js';
import { listPromises } from './discover.js';
import { executePromise } from './execute.js';
import { pluginPython, softwarePathOfPartition, type PluginPython } from './interpreter.js';
import {
  launcherRequest, launchPlugin, newMarker, planPlugin, pluginBanged, pluginStatus, PROMISE_LAUNCHER, type PluginSettings,
} from './plugin.js';
import {
  bangMessage, cacheApplies, DEFAULT_PERIODICITY_MINUTES, isDue, logRecord, newCache, parseLogHistory, promiseErrorMessage,
  resultFails, runVerdict, shouldBang, statusFile, transactionId,
} from './plan.js';
import {
  appendLog, logFile, mtimeSeconds, preparePromiseDirs, readCache, readLogTail, readStatus, writeCache, writeStatus, type PromiseDirs,
} from './state.js';
import type { PartitionPromisesResult, PartitionRef, PromiseMode, PromiseOutcome, PromiseSpec } from './types.js';

export interface RunPromisesOptions {
  mode: PromiseMode;
  /** [slapformat] cgroup_parent: promises are born in the partition's cgroup (default slapos). */
  cgroupParent?: string | undefined;
  /** Seconds per promise ([slapos] promise_timeout). */
  timeout: number;
  log: Logger;
  /** Sends softwareInstanceBang for this partition (anomaly mode); without it, no bang. */
  bang?: ((message: string) => Promise<void>) | undefined;
  /** Minutes between two anomaly runs of a promise (default 2, the reference's). */
  periodicity?: number | undefined;
  /** Epoch ms; tests move the clock. */
  now?: (() => number) | undefined;
  /** master-url, computer-id, certificates handed to Python plugin promises (plugin-promises.md §3). */
  plugin?: PluginSettings | undefined;
  /**
   * The partition's software release directory, whose bin/buildout names the
   * Python of its plugin promises; else found from the partition's
   * software_release link under `softwareRoot`.
   */
  softwarePath?: string | undefined;
  softwareRoot?: string | undefined;
}

export class PromiseRunnerError extends Error {
  override name = 'PromiseRunnerError';
}

/** The clean environment of a promise: the partition user's identity and nothing of ours. */
function promiseEnv(partition: PartitionRef): Record<string, string> {
  const user = userByUid(partition.uid);
  const env: Record<string, string> = {
    HOME: user?.home && user.home !== '/nonexistent' ? user.home : partition.path,
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
    PYTHONNOUSERSITE: 'true',
  };
  if (user) Object.assign(env, { USER: user.name, LOGNAME: user.name });
  return env;
}

async function runOne(
  partition: PartitionRef, promise: PromiseSpec, dirs: PromiseDirs, options: RunPromisesOptions, env: Record<string, string>,
): Promise<PromiseOutcome> {
  const now = options.now ?? Date.now;
  const { mode, log } = options;
  const mtime = mtimeSeconds(promise.path);
  const cached = readCache(dirs, promise.title);
  const cache = cacheApplies(cached, promise, mtime) ? cached : undefined;
  if (!isDue(mode, cache, now() / 1000)) {
    // Not due: the last result stands, and counts if it failed (the reference's rule).
    const status = readStatus(dirs, promise.title);
    log.debug({ promise: promise.name, next_run: new Date((cache?.next_run_after ?? 0) * 1000).toISOString() }, 'promise not due');
    return { promise, ran: false, failed: status?.result.failed ?? false, status };
  }
  const start = now();
  const transaction = transactionId(start, randomInt(0, 1000) / 1000);
  let verdict: { failed: boolean; message: string };
  let executionTime = 0;
  log.info({ promise: promise.name }, 'checking promise');
  const report = await executePromise(promise.path, {
    cwd: partition.path, uid: partition.uid, gid: partition.gid, env, timeoutMs: options.timeout * 1000,
    partition: { id: partition.id, cgroupParent: options.cgroupParent },
    onLine: (line) => log.info({ promise: promise.name }, line),
  });
  executionTime = report.duration;
  verdict = runVerdict(report, options.timeout);
  const records = logRecord(start, verdict.failed ? 'ERROR' : 'INFO', transaction, verdict.message);
  appendLog(dirs, promise.title, records, partition);
  const failed = resultFails(mode, verdict.failed, parseLogHistory(readLogTail(dirs, promise.title)));
  const status = statusFile(promise, mode, failed, verdict.message, executionTime, now());
  writeStatus(dirs, status, partition);
  writeCache(dirs, promise.title, newCache(promise, mtime ?? 0, start / 1000, options.periodicity ?? DEFAULT_PERIODICITY_MINUTES), partition);
  if (verdict.failed) log.error({ code: failed ? 'PROMISE_FAILED' : 'PROMISE_FAILED_TOLERATED', promise: promise.name, result: verdict.message }, failed ? 'promise failed' : 'promise failed (tolerated: not failing in a row yet)');
  else log.info({ promise: promise.name }, 'promise kept');
  return { promise, ran: true, failed, status };
}

/**
 * A Python plugin promise (plugin-promises.md): skipped when its cache says
 * so, else run by lib/promise-launcher.py with the release's Python; its
 * GenericPromise writes its own log (the file is created here, owned by the
 * partition user: the log directory is root's) and bangs itself.
 */
async function runPlugin(
  partition: PartitionRef, promise: PromiseSpec, dirs: PromiseDirs, options: RunPromisesOptions,
  env: Record<string, string>, python: PluginPython, allowBang: boolean,
): Promise<{ outcome: PromiseOutcome; banged: boolean }> {
  const now = options.now ?? Date.now;
  const { mode, log } = options;
  const cached = readCache(dirs, promise.title);
  const cache = cached && existsSync(cached.module_file) ? cached : undefined;
  const plan = planPlugin(mode, cache, now() / 1000);
  if (plan.action === 'disabled') {
    log.debug({ promise: promise.name, mode }, 'disabled by the promise');
    return { outcome: { promise, ran: false, failed: false, status: undefined }, banged: false };
  }
  if (plan.action === 'not-due') {
    const status = readStatus(dirs, promise.title);
    if (status?.result.failed) log.error({ code: 'PROMISE_FAILED', promise: promise.name, result: status.result.message }, 'promise failed (last result, not due)');
    return { outcome: { promise, ran: false, failed: status?.result.failed ?? false, status }, banged: false };
  }
  appendLog(dirs, promise.title, '', partition);
  const previous = readStatus(dirs, promise.title);
  log.info({ promise: promise.name, python: python.python }, 'checking promise');
  const request = launcherRequest(partition, promise, dirs.log, mode, allowBang, options.timeout, options.plugin, newMarker());
  const { report, parsed } = await launchPlugin(partition, request, {
    python: python.python, env, timeout: options.timeout, log, initGroups: userByUid(partition.uid) !== undefined,
    cgroupParent: options.cgroupParent,
  });
  if (report.spawnError !== undefined) log.error({ code: 'PROMISE_SPAWN_FAILED', promise: promise.name, python: python.python, error: report.spawnError }, 'cannot start the promise interpreter');
  if (parsed.result === undefined && report.exitCode === 2 && report.output.includes(PROMISE_LAUNCHER)) {
    // Python's "can't open file": the node's checkout must be readable by partition users.
    log.error({ code: 'PROMISE_LAUNCHER_UNREADABLE', promise: promise.name, path: PROMISE_LAUNCHER }, "the partition user cannot read the promise launcher; make the node's lib/ readable by all");
  }
  if (parsed.cache) writeCache(dirs, promise.title, parsed.cache, partition);
  // The promise did not get to open its log (import error): no log file, as the reference.
  if (readLogTail(dirs, promise.title) === '') unlinkBeneath(partition.path, relativeTo(partition.path, logFile(dirs, promise.title))); // never through a link
  const status = pluginStatus(promise, mode, report, parsed, options.timeout, previous, now());
  if (status) writeStatus(dirs, status, partition);
  const failed = status?.result.failed ?? false;
  if (failed) log.error({ code: 'PROMISE_FAILED', promise: promise.name, result: status?.result.message ?? '' }, 'promise failed');
  else if (status) log.info({ promise: promise.name }, 'promise kept');
  else log.info({ promise: promise.name, mode }, 'no result (disabled by the promise)');
  return { outcome: { promise, ran: true, failed, status }, banged: pluginBanged(mode, allowBang, status, report, parsed) };
}

/** The interpreter of the partition's plugin promises, said once per run when it is not the release's. */
function resolvePython(partition: PartitionRef, options: RunPromisesOptions): PluginPython {
  const release = options.softwarePath
    ?? (options.softwareRoot !== undefined ? softwarePathOfPartition(partition.path, options.softwareRoot) : undefined);
  const python = pluginPython(release);
  if (python.source === 'fallback') options.log.warn({ code: 'PROMISE_PYTHON_FALLBACK', partition: partition.id, python: python.python, why: python.why ?? '' }, 'plugin promises run with a fallback interpreter');
  return python;
}

/**
 * Runs the partition's promises one after another, as its directory's owner
 * (never root), and stores each result. Resolves with every outcome; `error`
 * is the reference's PromiseError text when one failed. In anomaly mode the
 * first freshly failing executable promise bangs (once per call). Throws
 * PromiseRunnerError when the partition is owned by root.
 */
export async function runPartitionPromises(partition: PartitionRef, options: RunPromisesOptions): Promise<PartitionPromisesResult> {
  // Every line about these promises carries the partition in --log-file (the instance loop's logger already does).
  const log = options.log.bindings().partition === partition.id ? options.log : options.log.child({ partition: partition.id });
  options = { ...options, log };
  if (partition.uid === 0 || partition.gid === 0) {
    throw new PromiseRunnerError(`partition ${partition.id}: ${partition.path} is owned by root; promises never run as root`);
  }
  const { promises, bad } = listPromises(partition.path);
  for (const file of bad) log.warn({ code: 'PROMISE_FILE_BAD', path: file }, 'bad promise file: not an executable regular file (skipped)');
  const result: PartitionPromisesResult = {
    partition: partition.id, mode: options.mode, outcomes: [], failed: [], skipped: 0, error: undefined, bang: undefined, badFiles: bad,
  };
  if (promises.length === 0) return result;
  const dirs = preparePromiseDirs(partition);
  const env = promiseEnv(partition);
  const python = promises.some((p) => p.kind === 'python-plugin') ? resolvePython(partition, options) : undefined;
  // slapgrid exports the instance root to what it starts (plugin-promises.md §2).
  const pluginEnv = { ...env, SLAPGRID_INSTANCE_ROOT: path.dirname(partition.path) };
  // The reference's bang_called: once a promise banged (or failed an anomaly check), later ones may not.
  let bangCalled = false;
  for (const promise of promises) {
    let outcome: PromiseOutcome;
    if (promise.kind === 'python-plugin' && python) {
      const run = await runPlugin(partition, promise, dirs, options, pluginEnv, python, options.mode === 'anomaly' && !bangCalled);
      outcome = run.outcome;
      if (run.banged) result.bang = { promise: promise.name, message: bangMessage(promise) };
      if (options.mode === 'anomaly' && outcome.ran && outcome.status?.result.type === 'Anomaly Result' && outcome.failed) bangCalled = true;
    } else {
      outcome = await runOne(partition, promise, dirs, options, env);
    }
    result.outcomes.push(outcome);
    if (!outcome.ran) result.skipped += 1;
    if (outcome.failed) result.failed.push(outcome);
    if (options.bang && !bangCalled && shouldBang(options.mode, outcome, result.bang !== undefined)) {
      bangCalled = true;
      const message = bangMessage(promise);
      result.bang = { promise: promise.name, message };
      try {
        await options.bang(message);
        log.warn({ code: 'BANG_SENT', message }, 'bang sent');
      } catch (error) {
        result.bang.error = (error as Error).message;
        log.error({ code: 'BANG_FAILED', message, error: result.bang.error }, 'bang failed');
      }
    }
  }
  // Per partition, so that two partitions' lines do not read as one message repeated.
  if (result.skipped > 0) log.info({ skipped: result.skipped }, "promises didn't need to be checked (not due yet; last result kept)");
  result.error = promiseErrorMessage(result.failed);
  return result;
}
