// Python plugin promises (plugin-promises.md): the node runs
// lib/promise-launcher.py once per promise, as the partition user, with the
// release's Python (interpreter.ts), and stores what it returns in the
// reference's files. Pure decisions first, then the one effect.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../util/log.js';
import { executePromise } from './execute.js';
import { timeoutMessage, truncateMessage, utcDate } from './plan.js';
import type { CacheFile, ExecutionReport, PartitionRef, PromiseMode, PromiseSpec, StatusFile } from './types.js';

/** lib/promise-launcher.py of this package (dist/src/promise-runner → repository root). */
export const PROMISE_LAUNCHER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'lib', 'promise-launcher.py');

/** The reference's version, handed to promises as `slapgrid-version` (GenericPromise compares it). */
export const SLAPGRID_VERSION = '1.24.0';

/** The interpreter starts and imports before the promise's own clock starts: allowed on top of the timeout. */
export const LAUNCHER_START_ALLOWANCE_MS = 1_000;

/** A result line carries a message of at most 5000 characters (more is cut by GenericPromise) and a few fields. */
const MARKED_LINE_MAX_CHARS = 256 * 1024;

export const NO_OUTPUT_MESSAGE = 'Error: No output returned by the promise';

/** What plugin promises need from the node's configuration (contract §3). */
export interface PluginSettings {
  masterUrl: string | undefined;
  computerId: string | undefined;
  /** [slapos] certificate_repository_path: `<id>.crt|.key` are passed whether or not they exist. */
  certificateRepository: string | undefined;
}

/** The request the launcher reads (its argv[1]). */
export interface LauncherRequest {
  path: string;
  name: string;
  'partition-folder': string;
  'log-folder': string;
  'check-anomaly': boolean;
  'allow-bang': boolean;
  'promise-timeout': number;
  'master-url': string | null;
  'partition-cert': string | null;
  'partition-key': string | null;
  'partition-id': string;
  'computer-id': string | null;
  'slapgrid-version': string;
  debug: null;
  marker: string;
}

export function launcherRequest(
  partition: PartitionRef, promise: PromiseSpec, logFolder: string, mode: PromiseMode, allowBang: boolean,
  timeout: number, settings: PluginSettings | undefined, marker: string,
): LauncherRequest {
  const repo = settings?.certificateRepository;
  return {
    path: promise.path,
    name: promise.name,
    'partition-folder': partition.path,
    'log-folder': logFolder,
    'check-anomaly': mode === 'anomaly',
    'allow-bang': mode === 'anomaly' && allowBang,
    'promise-timeout': timeout,
    'master-url': settings?.masterUrl || null,
    'partition-cert': repo ? path.join(repo, `${partition.id}.crt`) : null,
    'partition-key': repo ? path.join(repo, `${partition.id}.key`) : null,
    'partition-id': partition.id,
    'computer-id': settings?.computerId || null,
    'slapgrid-version': SLAPGRID_VERSION,
    debug: null,
    marker,
  };
}

export function newMarker(): string {
  return `slapos-node-promise-${randomBytes(8).toString('hex')}`;
}

/** The result a promise's GenericPromise put in its queue, as the launcher serialized it. */
export interface LauncherResult {
  type: string;
  failed: boolean;
  date: string | null;
  message: string | null;
}

export interface LauncherOutput {
  cache: CacheFile | undefined;
  result: LauncherResult | undefined;
  /** Every other line: the promise's and launcher's output, for the node's log. */
  lines: string[];
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function asCache(value: unknown): CacheFile | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const numbers = ['periodicity', 'timestamp', 'next_run_after', 'module_file_mtime'];
  if (!numbers.every((key) => typeof v[key] === 'number' && Number.isFinite(v[key]))) return undefined;
  if (typeof v.module_file !== 'string' || typeof v.is_tested !== 'boolean' || typeof v.is_anomaly_detected !== 'boolean') return undefined;
  return {
    is_tested: v.is_tested, is_anomaly_detected: v.is_anomaly_detected, periodicity: v.periodicity as number,
    next_run_after: v.next_run_after as number, timestamp: v.timestamp as number, module_file: v.module_file,
    module_file_mtime: v.module_file_mtime as number,
  };
}

function asResult(value: unknown): LauncherResult | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.type !== 'string' || typeof v.failed !== 'boolean') return undefined;
  const str = (x: unknown) => (typeof x === 'string' ? x : null);
  return { type: v.type, failed: v.failed, date: str(v.date), message: str(v.message) };
}

/** Pure: the launcher's output → its cache and result lines (the last of each) and the rest. */
export function parseLauncherOutput(output: string, marker: string): LauncherOutput {
  const parsed: LauncherOutput = { cache: undefined, result: undefined, lines: [] };
  for (const line of output.split('\n')) {
    if (line.startsWith(`${marker} cache `)) parsed.cache = asCache(parseJson(line.slice(marker.length + 7))) ?? parsed.cache;
    else if (line.startsWith(`${marker} result `)) parsed.result = asResult(parseJson(line.slice(marker.length + 8))) ?? parsed.result;
    else if (line !== '') parsed.lines.push(line);
  }
  return parsed;
}

/** What the runner does with a plugin before starting it (the reference's PromiseLauncher._launchPromise). */
export type PluginPlan =
  | { action: 'run' }
  /** The promise disabled this mode (setTestLess/setAnomalyLess, from its cache): nothing written, not failed. */
  | { action: 'disabled' }
  /** Anomaly mode, not due: the stored result stands. */
  | { action: 'not-due' };

/** Pure. `cache` is the cache entry when its module file still exists (the reference's only validity rule). */
export function planPlugin(mode: PromiseMode, cache: CacheFile | undefined, nowSeconds: number): PluginPlan {
  if (cache !== undefined) {
    if ((mode === 'anomaly' && !cache.is_anomaly_detected) || (mode === 'test' && !cache.is_tested)) return { action: 'disabled' };
    if (mode === 'anomaly' && nowSeconds < cache.next_run_after) return { action: 'not-due' };
  }
  return { action: 'run' };
}

/** The reference's execution-time: counted in 0.05 s polls; the timeout itself when it expired. */
export function executionTime(seconds: number, timedOut: boolean, timeout: number): number {
  if (timedOut) return timeout;
  return Math.round(Math.max(1, Math.ceil(seconds / 0.05 - 1e-9)) * 5) / 100;
}

/**
 * Pure: the status file of a plugin run, or undefined for an empty result
 * (the mode is disabled by the promise: nothing is written). Without a
 * result (timeout, import error, crash) the reference generates one: test
 * mode fails; anomaly mode fails only when the previous stored result failed
 * or says `error:` (`_generatePromiseResult`).
 */
export function pluginStatus(
  promise: PromiseSpec, mode: PromiseMode, report: ExecutionReport, parsed: LauncherOutput,
  timeout: number, previous: StatusFile | undefined, nowMs: number,
): StatusFile | undefined {
  const base = { title: promise.title, name: promise.name, path: promise.path, 'execution-time': executionTime(report.duration, report.timedOut, timeout) };
  if (!report.timedOut && parsed.result !== undefined) {
    const r = parsed.result;
    if (r.type === 'Empty Result') return undefined;
    const type = r.type === 'Anomaly Result' ? 'Anomaly Result' : 'Test Result';
    return {
      ...base,
      result: { type, failed: r.failed, date: r.date ?? utcDate(nowMs), message: r.message === null ? (null as unknown as string) : truncateMessage(r.message) },
    };
  }
  const message = report.timedOut ? timeoutMessage(timeout) : NO_OUTPUT_MESSAGE;
  if (mode === 'test') return { ...base, result: { type: 'Test Result', failed: true, date: utcDate(nowMs), message } };
  const failed = previous !== undefined && (previous.result.failed || String(previous.result.message ?? '').toLowerCase().includes('error:'));
  return { ...base, result: { type: 'Anomaly Result', failed, date: utcDate(nowMs), message } };
}

/** Pure: a failed Anomaly Result of a run allowed to bang means the promise banged (GenericPromise does it itself). */
export function pluginBanged(mode: PromiseMode, allowBang: boolean, status: StatusFile | undefined, report: ExecutionReport, parsed: LauncherOutput): boolean {
  return mode === 'anomaly' && allowBang && !report.timedOut && parsed.result !== undefined
    && status !== undefined && status.result.type === 'Anomaly Result' && status.result.failed;
}

export interface PluginRunOptions {
  python: string;
  /** The cgroup parent ([slapformat] cgroup_parent; default slapos). */
  cgroupParent?: string | undefined;
  env: Record<string, string>;
  timeout: number;
  log: Logger;
  /** With the user's supplementary groups (it has a passwd entry). */
  initGroups: boolean;
}

/** Effect: runs the launcher for one plugin (timeout and group kill of executePromise) and parses what it said. */
export async function launchPlugin(
  partition: PartitionRef, request: LauncherRequest, options: PluginRunOptions,
): Promise<{ report: ExecutionReport; parsed: LauncherOutput }> {
  const prefix = `${request.marker} `;
  // Our lines are taken from the stream (the kept output is only the end of a
  // talkative promise's); only the last of each kind, and not a huge one.
  const ours = new Map<string, string>();
  const report = await executePromise(options.python, {
    args: [PROMISE_LAUNCHER, JSON.stringify(request)],
    cwd: partition.path, uid: partition.uid, gid: partition.gid, env: options.env, initGroups: options.initGroups,
    partition: { id: partition.id, cgroupParent: options.cgroupParent },
    timeoutMs: options.timeout * 1000 + LAUNCHER_START_ALLOWANCE_MS,
    onLine: (line) => {
      if (line.startsWith(prefix)) {
        if (line.length <= MARKED_LINE_MAX_CHARS) ours.set(line.slice(prefix.length).split(' ', 1)[0] ?? '', line);
      }
      else options.log.info({ partition: partition.id, promise: request.name }, line);
    },
  });
  return { report, parsed: parseLauncherOutput([...ours.values()].join('\n'), request.marker) };
}
