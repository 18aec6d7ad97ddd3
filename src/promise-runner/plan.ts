// Pure decisions of the promise runner (slapgrid.md §6): which files are
// promises, which run now, what a run's result is, when to bang, and the
// text of the reference's files.
import type {
  CacheFile, ExecutionReport, LogTransaction, PromiseMode, PromiseOutcome, PromiseSpec, StatusFile,
} from './types.js';

/** The reference's default promise periodicity, minutes. */
export const DEFAULT_PERIODICITY_MINUTES = 2;
/** Anomaly of an executable promise: its last this-many runs failed (the legacy wrapper's rule). */
export const ANOMALY_FAILURES_IN_A_ROW = 3;
/** Longer messages keep their end, after `...` (the reference's 5000). */
export const MESSAGE_MAX_CHARS = 5000;

/** Python's os.path.splitext(name)[0]: a leading dot does not start an extension. */
export function titleOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot > 0 && name.slice(0, dot).replace(/^\.+/, '') !== '' ? name.slice(0, dot) : name;
}

export interface DirEntryInfo {
  name: string;
  path: string;
  /** A regular file (symlinks followed, as the reference's os.path.isfile). */
  isFile: boolean;
  executable: boolean;
}

/**
 * etc/plugin: `*.py` (not `__init__*`) are slapos.core plugin modules; other
 * executable regular files are run like legacy promises (ours: the reference
 * ignores them); compiled Python files are ignored.
 * etc/promise: every entry must be an executable regular file, else it is
 * reported as bad and skipped. Sorted by name (the reference: listing order).
 */
export function classifyPromises(plugin: DirEntryInfo[], legacy: DirEntryInfo[]): { promises: PromiseSpec[]; bad: string[] } {
  const byName = (a: DirEntryInfo, b: DirEntryInfo) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const promises: PromiseSpec[] = [];
  const bad: string[] = [];
  for (const entry of [...plugin].sort(byName)) {
    if (entry.name.startsWith('__init__') || /\.py[co]$/.test(entry.name) || !entry.isFile) continue;
    const spec = { title: titleOf(entry.name), name: entry.name, path: entry.path, folder: 'plugin' as const };
    if (entry.name.endsWith('.py')) promises.push({ ...spec, kind: 'python-plugin' });
    else if (entry.executable) promises.push({ ...spec, kind: 'executable' });
  }
  for (const entry of [...legacy].sort(byName)) {
    if (!entry.isFile || !entry.executable) {
      bad.push(entry.path);
      continue;
    }
    promises.push({ title: titleOf(entry.name), name: entry.name, path: entry.path, kind: 'executable', folder: 'legacy' });
  }
  return { promises, bad };
}

/** A cache entry counts only while it describes the promise file as it is now (else: run now). */
export function cacheApplies(cache: CacheFile | undefined, promise: PromiseSpec, mtime: number | undefined): cache is CacheFile {
  return cache !== undefined && cache.module_file === promise.path && mtime !== undefined && cache.module_file_mtime === mtime;
}

/** Test mode runs everything; anomaly mode runs a promise when its cache says it is due. */
export function isDue(mode: PromiseMode, cache: CacheFile | undefined, nowSeconds: number): boolean {
  if (mode === 'test' || cache === undefined) return true;
  return nowSeconds >= cache.next_run_after;
}

export function newCache(promise: PromiseSpec, mtime: number, startSeconds: number, periodicityMinutes: number): CacheFile {
  return {
    is_tested: true,
    is_anomaly_detected: true,
    periodicity: periodicityMinutes,
    timestamp: startSeconds,
    next_run_after: startSeconds + periodicityMinutes * 60,
    module_file: promise.path,
    module_file_mtime: mtime,
  };
}

export function truncateMessage(message: string): string {
  return message.length > MESSAGE_MAX_CHARS ? `...${message.slice(-MESSAGE_MAX_CHARS)}` : message;
}

export function timeoutMessage(timeoutSeconds: number): string {
  return `Error: Promise timed out after ${timeoutSeconds} seconds`;
}

/** What one run of an executable says: failed, and its message (the output, or why there is none). */
export function runVerdict(report: ExecutionReport, timeoutSeconds: number): { failed: boolean; message: string } {
  if (report.timedOut) return { failed: true, message: timeoutMessage(timeoutSeconds) };
  if (report.spawnError !== undefined) return { failed: true, message: `Error: cannot run the promise: ${report.spawnError}` };
  const output = report.output.trim();
  if (report.exitCode === 0) return { failed: false, message: output };
  const how = report.exitCode !== null ? `exit status ${report.exitCode}` : `signal ${report.signal ?? '?'}`;
  return { failed: true, message: output !== '' ? output : `Error: the promise failed (${how}) without output` };
}

/**
 * Whether the stored result fails. Test mode: this run failed. Anomaly mode:
 * the last ANOMALY_FAILURES_IN_A_ROW runs failed (`history` ends with this
 * run), so one failure or one timeout is tolerated.
 */
export function resultFails(mode: PromiseMode, runFailed: boolean, history: LogTransaction[]): boolean {
  if (mode === 'test') return runFailed;
  const last = history.slice(-ANOMALY_FAILURES_IN_A_ROW);
  return last.length === ANOMALY_FAILURES_IN_A_ROW && last.every((entry) => entry.failed);
}

export function statusFile(
  promise: PromiseSpec, mode: PromiseMode, failed: boolean, message: string, executionTime: number, dateMs: number,
): StatusFile {
  return {
    title: promise.title,
    name: promise.name,
    path: promise.path,
    'execution-time': executionTime,
    result: { type: mode === 'test' ? 'Test Result' : 'Anomaly Result', failed, date: utcDate(dateMs), message: truncateMessage(message) },
  };
}

/** `YYYY-MM-DDTHH:MM:SS+0000` in UTC. */
export function utcDate(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 19)}+0000`;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** Python logging's asctime without milliseconds: local time `YYYY-MM-DD HH:MM:SS`. */
export function logTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `<epoch seconds>-<100..999>`, as GenericPromise. */
export function transactionId(ms: number, random: number): string {
  return `${Math.floor(ms / 1000)}-${100 + Math.floor(random * 900)}`;
}

/** One log record: `time - LEVEL - transaction - message` (continuation lines follow as they are). */
export function logRecord(ms: number, level: 'INFO' | 'ERROR', transaction: string, message: string): string {
  return `${logTime(ms)} - ${level} - ${transaction} - ${message}\n`;
}

const RECORD = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - ([A-Z]+) - (\d+-\d+) - /;

/** The runs recorded in a promise log, oldest first: a run failed iff it logged ERROR or CRITICAL. */
export function parseLogHistory(text: string): LogTransaction[] {
  const runs: LogTransaction[] = [];
  const index = new Map<string, LogTransaction>();
  for (const line of text.split('\n')) {
    const match = RECORD.exec(line);
    if (!match) continue;
    const [, level, id] = match as unknown as [string, string, string];
    let run = index.get(id);
    if (!run) {
      run = { id, failed: false };
      index.set(id, run);
      runs.push(run);
    }
    if (level === 'ERROR' || level === 'CRITICAL') run.failed = true;
  }
  return runs;
}

/** The reference's PromiseError text, for the first failing promise. */
export function promiseErrorMessage(failed: PromiseOutcome[]): string | undefined {
  const first = failed[0];
  if (!first) return undefined;
  return `Promise '${first.promise.name}' failed with output: ${first.status?.result.message ?? ''}`;
}

/** Anomaly mode bangs for a freshly failed executable promise, once per partition run. */
export function shouldBang(mode: PromiseMode, outcome: PromiseOutcome, alreadyBanged: boolean): boolean {
  return mode === 'anomaly' && !alreadyBanged && outcome.ran && outcome.failed && outcome.promise.kind === 'executable';
}

export function bangMessage(promise: PromiseSpec): string {
  return `Promise ${promise.title} is failing`;
}
