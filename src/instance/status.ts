// Per-partition state for `slapos node status`: last applied timestamp, last
// success, backoff, last error. Reads only the partitions' node-side files.
import { readdirSync, statSync } from 'node:fs';
import { partitionFiles } from '../partition/files.js';
import { readPartitionState, readTimestampFile } from '../partition/state.js';

export interface PartitionStatus {
  id: string;
  /** Master timestamp last applied with success. */
  timestamp: string | null;
  lastSuccess: string | null;
  backoff: { failures: number; retryAt: string; backingOff: boolean; lastError: string } | null;
}

/**
 * The partitions found under `instanceRoot`. Directories this user may not
 * look into (partition directories are 0750, owned by their user) are
 * added to `unreadable` instead of being silently left out.
 */
export function readPartitionsStatus(instanceRoot: string, now = Date.now(), unreadable: string[] = []): PartitionStatus[] {
  let names: string[];
  try {
    names = readdirSync(instanceRoot, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
  const result: PartitionStatus[] = [];
  for (const id of names.sort()) {
    const files = partitionFiles(instanceRoot, id);
    let isPartition = false;
    let denied = false;
    for (const marker of [files.resource, files.slapgrid]) {
      try {
        statSync(marker);
        isPartition = true;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EACCES' || code === 'EPERM') denied = true; // not this one otherwise
      }
    }
    if (!isPartition) {
      if (denied) unreadable.push(id);
      continue;
    }
    let timestamp: string | null = null;
    let lastSuccess: string | null = null;
    // Through safe-fs: a FIFO or link planted as .timestamp must not hang or mislead `node status`.
    const stamp = readTimestampFile(files);
    if (stamp) {
      timestamp = stamp.content;
      lastSuccess = new Date(stamp.mtimeMs).toISOString();
    }
    const state = readPartitionState(files);
    if (state.lastSuccess) lastSuccess = new Date(state.lastSuccess).toISOString();
    const b = state.backoff;
    result.push({
      id, timestamp, lastSuccess,
      backoff: b ? { failures: b.failures, retryAt: new Date(b.retryAt).toISOString(), backingOff: now < b.retryAt, lastError: b.lastError.split('\n')[0] ?? '' } : null,
    });
  }
  return result;
}

export function formatPartitionsStatus(partitions: PartitionStatus[]): string {
  if (partitions.length === 0) return '  no partitions';
  const width = Math.max(...partitions.map((p) => p.id.length));
  return partitions
    .map((p) => {
      // A free partition has never been processed: that is not a failure.
      const ok = p.lastSuccess ? `last success ${p.lastSuccess}` : p.backoff ? 'no success yet' : 'nothing deployed yet (free, or waiting for its first run)';
      const b = p.backoff;
      const failing = b ? `; failed ${b.failures}×${b.backingOff ? `, backing off until ${b.retryAt}` : ', retried next run'}: ${b.lastError}` : '';
      return `  ${p.id.padEnd(width)}  ${ok}${failing}`;
    })
    .join('\n');
}

