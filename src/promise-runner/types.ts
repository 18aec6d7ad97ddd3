// The data of promises (slapgrid.md §6): what a promise is, what a run
// stores, and the shapes of the reference's JSON files (keys kept as is).

/** test: forced, after a started partition is processed; anomaly: periodicity honoured, may bang. */
export type PromiseMode = 'test' | 'anomaly';

/**
 * executable: run it (legacy etc/promise, or an executable in etc/plugin);
 * python-plugin: a slapos.core GenericPromise module, run by lib/promise-launcher.py (plugin.ts).
 */
export type PromiseKind = 'executable' | 'python-plugin';

export interface PromiseSpec {
  /** File name without extension: names the result, cache and log files. */
  title: string;
  /** File name (with `.py` for plugins, as the reference). */
  name: string;
  path: string;
  kind: PromiseKind;
  /** 'plugin' for etc/plugin, 'legacy' for etc/promise. */
  folder: 'plugin' | 'legacy';
}

/** A partition as the promise runner needs it: promises run as its directory's owner. */
export interface PartitionRef {
  id: string;
  path: string;
  uid: number;
  gid: number;
}

/** `.slapgrid/promise/result/<title>.status.json` */
export interface StatusFile {
  title: string;
  name: string;
  path: string;
  'execution-time': number;
  result: {
    type: 'Test Result' | 'Anomaly Result';
    failed: boolean;
    /** UTC, `YYYY-MM-DDTHH:MM:SS+0000` */
    date: string;
    message: string;
  };
}

/** `.slapgrid/promise/cache/<title>` */
export interface CacheFile {
  is_tested: boolean;
  is_anomaly_detected: boolean;
  /** Minutes. */
  periodicity: number;
  /** Epoch seconds of the last start. */
  timestamp: number;
  /** Epoch seconds before which a non-forced run does not run the promise again. */
  next_run_after: number;
  /** The promise's file (the reference: the module of its class). */
  module_file: string;
  module_file_mtime: number;
}

/** What running one executable gave. */
export interface ExecutionReport {
  exitCode: number | null;
  signal: string | null;
  output: string;
  timedOut: boolean;
  /** Seconds. */
  duration: number;
  /** Spawning failed (ENOENT, EACCES…): the message. */
  spawnError?: string | undefined;
}

/** One transaction of a promise's log: one run. */
export interface LogTransaction {
  id: string;
  failed: boolean;
}

export interface PromiseOutcome {
  promise: PromiseSpec;
  /** false: not due (anomaly mode), the previous result was reused. */
  ran: boolean;
  failed: boolean;
  /** The stored (or reused) result; undefined when skipped without any previous result. */
  status: StatusFile | undefined;
}

export interface BangReport {
  promise: string;
  message: string;
  /** The bang could not be sent: why. */
  error?: string | undefined;
}

export interface PartitionPromisesResult {
  partition: string;
  mode: PromiseMode;
  outcomes: PromiseOutcome[];
  failed: PromiseOutcome[];
  /** Promises not run because not due (anomaly mode). */
  skipped: number;
  /** The reference's PromiseError text for the first failing promise; undefined when all kept. */
  error: string | undefined;
  bang: BangReport | undefined;
  /** Entries of etc/promise that are not executable regular files (warned, skipped). */
  badFiles: string[];
}
