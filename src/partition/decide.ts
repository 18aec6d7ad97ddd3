// Whether a partition is processed in this run (slapgrid.md §4.2, plus our
// backoff). Pure: the caller reads the files and the clock.
import { isBackingOff, type BackoffState } from './backoff.js';

export interface DecideInput {
  /** The master's timestamp (parameter `timestamp`), or null when it sent none. */
  timestamp: string | null;
  requestedState: string;
  /** Seconds: maximum_periodicity or <software>/periodicity; 0 = every run, < 0 = never for time reasons. */
  periodicity: number;
  /** --all / --force. */
  develop: boolean;
  forceStop: boolean;
  /** Named in --only-cp: the operator asked for this one, so backoff does not hold it back. */
  explicit: boolean;
  /** Content and mtime of .timestamp, or null when absent. */
  timestampFile: { content: string; mtimeMs: number } | null;
  backoff: BackoffState | undefined;
  fingerprint: string;
  now: number;
}

export type Decision =
  | { action: 'process'; reason: string; removeTimestamp: boolean; writeTimestamp: boolean }
  | { action: 'up-to-date' }
  | { action: 'backoff'; retryAt: number; failures: number; lastError: string };

export function decidePartition(input: DecideInput): Decision {
  // --force-stop of a started partition: always processed, never marked done (§4.2.6).
  const timestamp = input.forceStop && input.requestedState === 'started' ? null : input.timestamp;
  const writeTimestamp = timestamp !== null;
  let reason = 'forced (--all)';
  let removeTimestamp = false;
  if (!input.develop) {
    if (timestamp === null) reason = 'no timestamp from the master';
    else if (input.periodicity === 0) reason = 'periodicity is 0';
    else if (input.timestampFile === null) reason = 'never applied';
    else if (input.timestampFile.content !== timestamp) {
      reason = 'the master changed it';
      removeTimestamp = true;
    } else if (input.periodicity < 0 || input.now <= input.timestampFile.mtimeMs + input.periodicity * 1000) {
      return { action: 'up-to-date' };
    } else {
      reason = `older than the periodicity (${input.periodicity} s)`;
      removeTimestamp = true;
    }
    if (!input.explicit && isBackingOff(input.backoff, input.fingerprint, input.now)) {
      const b = input.backoff!;
      return { action: 'backoff', retryAt: b.retryAt, failures: b.failures, lastError: b.lastError };
    }
  }
  return { action: 'process', reason, removeTimestamp, writeTimestamp };
}

/** --only-cp as the reference: comma-separated ids, no trimming; undefined = all. */
export function parseOnlyCp(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value.split(',').filter((id) => id !== '');
}

/** The reference's ValueError text for ids the master does not list, or undefined. */
export function unknownPartitions(onlyCp: readonly string[] | undefined, known: readonly string[]): string | undefined {
  if (!onlyCp) return undefined;
  const set = new Set(known);
  const unknown = [...new Set(onlyCp.filter((id) => !set.has(id)))].sort();
  if (unknown.length === 0) return undefined;
  return unknown.length === 1 ? `Unknown partition: ${unknown[0]}` : `Unknown partitions: ${unknown.join(', ')}`;
}
