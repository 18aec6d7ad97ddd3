// Exponential backoff of failing partitions (ours; the reference re-runs a
// broken partition's buildout on every run, slapgrid.md §11.2). Pure: the
// state is data, persisted by state.ts in the partition's .slapgrid/.
import { createHash } from 'node:crypto';

export interface BackoffPolicy {
  /** Seconds to wait after the first failure; 0 disables backoff. */
  baseSeconds: number;
  /** Cap of the wait, in seconds. */
  maxSeconds: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseSeconds: 60, maxSeconds: 3600 };

export interface BackoffState {
  /** Consecutive failures with the same fingerprint. */
  failures: number;
  /** Epoch ms of the last failure. */
  lastFailure: number;
  /** Epoch ms before which the partition is not processed again (unless forced). */
  retryAt: number;
  /** What the master asked for when it failed (see partitionFingerprint). */
  fingerprint: string;
  lastError: string;
}

/**
 * What the master asks of a partition: a change of any part (new timestamp,
 * parameters, release, requested state) resets the backoff, because the new
 * request may well fix what failed.
 */
export function partitionFingerprint(parts: { timestamp: string | null; softwareUrl: string | null; requestedState: string; parameters: unknown }): string {
  return createHash('sha256').update(JSON.stringify([parts.timestamp, parts.softwareUrl, parts.requestedState, parts.parameters])).digest('hex').slice(0, 32);
}

export function backoffDelaySeconds(failures: number, policy: BackoffPolicy): number {
  if (policy.baseSeconds <= 0 || failures <= 0) return 0;
  // 2^30 × base is past any sane cap; avoid Infinity on absurd failure counts.
  return Math.min(policy.maxSeconds, policy.baseSeconds * 2 ** Math.min(failures - 1, 30));
}

/** The state after one more failure (the count restarts when the fingerprint changed). */
export function afterFailure(previous: BackoffState | undefined, fingerprint: string, now: number, error: string, policy: BackoffPolicy): BackoffState {
  const failures = previous && previous.fingerprint === fingerprint ? previous.failures + 1 : 1;
  return { failures, lastFailure: now, retryAt: now + backoffDelaySeconds(failures, policy) * 1000, fingerprint, lastError: error.slice(0, 4096) };
}

/** Whether the partition must wait: same request as when it failed, and the wait is not over. */
export function isBackingOff(state: BackoffState | undefined, fingerprint: string, now: number): boolean {
  return state !== undefined && state.fingerprint === fingerprint && now < state.retryAt;
}
