// Reading and writing a partition's node-side files. The partition directory
// belongs to the partition user, who may plant symlinks there: files are
// written to a fresh temporary name (O_EXCL, so never through a link) and
// renamed over the target, and read without following links.
import path from 'node:path';
import {
  mkdirBeneath, readTextBeneath, relativeTo, statBeneath, unlinkBeneath, UnsafePathError, writeBeneath, writeIfChangedBeneath,
} from '../safe-fs/index.js';
import type { BackoffState } from './backoff.js';
import type { PartitionFiles } from './files.js';

export interface Owner {
  uid: number;
  gid: number;
}

/**
 * Writes `content` to `file` atomically through safe-fs (temp O_EXCL|O_NOFOLLOW,
 * fchmod/fchown/fsync on the descriptor, rename, fsync of the directory).
 * `base` is the trusted directory the path is resolved beneath without
 * links: the partition directory for partition files; by default the file's
 * own directory.
 */
export function writeFileAtomic(file: string, content: string, mode: number, owner?: Owner, base = path.dirname(file)): void {
  writeBeneath(base, relativeTo(base, file), content, { mode, owner });
}

/** Writes only when the content (or mode, owner) differs; resolves to whether it wrote. */
export function writeIfChanged(file: string, content: string, mode: number, owner?: Owner, base = path.dirname(file)): boolean {
  return writeIfChangedBeneath(base, relativeTo(base, file), content, { mode, owner });
}

/** A link, FIFO, directory or oversized file where a partition file is expected. */
export const UnsafeFileError = UnsafePathError;

/**
 * Reads a regular file without following a link (in any component beneath
 * `base`), up to `maxBytes`; undefined when absent. A link, a FIFO or an
 * oversized file is an UnsafePathError.
 */
export function readTextNoFollow(file: string, maxBytes = 1024 * 1024, base = path.dirname(file)): string | undefined {
  return readTextBeneath(base, relativeTo(base, file), { maxBytes });
}

export function readTimestampFile(files: PartitionFiles): { content: string; mtimeMs: number } | null {
  try {
    const content = readTextBeneath(files.dir, relativeTo(files.dir, files.timestamp), { maxBytes: 4096 });
    const st = statBeneath(files.dir, relativeTo(files.dir, files.timestamp));
    return content === undefined || st === undefined ? null : { content, mtimeMs: st.mtimeMs };
  } catch {
    return null; // a link or a FIFO: as absent (the partition is processed again)
  }
}

export function writeTimestamp(files: PartitionFiles, timestamp: string): void {
  writeFileAtomic(files.timestamp, timestamp, 0o644, undefined, files.dir);
}

/** Removes one name (a link itself, never its target); `base` as in writeFileAtomic. */
export function removeFile(file: string, base = path.dirname(file)): void {
  unlinkBeneath(base, relativeTo(base, file));
}

/** The node's per-partition state (backoff), or undefined when absent or unreadable. */
export interface PartitionState {
  backoff?: BackoffState;
  /** Epoch ms of the last successful processing. */
  lastSuccess?: number;
  /** The last anomaly check of this up-to-date partition failed (and was reported). */
  anomaly?: boolean;
}

export function readPartitionState(files: PartitionFiles): PartitionState {
  try {
    return JSON.parse(readTextBeneath(files.dir, relativeTo(files.dir, files.state)) ?? '{}') as PartitionState;
  } catch {
    return {};
  }
}

export function writePartitionState(files: PartitionFiles, state: PartitionState): void {
  writeFileAtomic(files.state, `${JSON.stringify(state, null, 2)}\n`, 0o640, undefined, files.dir);
}

/**
 * Creates .slapgrid/ and .slapgrid/log/ owned by root with the partition's
 * group (0750), so the instance can read its logs but not forge the node's
 * state; refuses a .slapgrid that is not a real directory.
 */
export function ensureSlapgridDirs(files: PartitionFiles, owner: Owner): void {
  for (const dir of [files.slapgrid, files.logDir]) {
    // Reached without links, owner and mode set by descriptor: a .slapgrid
    // planted as a link or a file is an error, never followed.
    mkdirBeneath(files.dir, relativeTo(files.dir, dir), { mode: 0o750, owner: { uid: 0, gid: owner.gid }, enforce: true });
  }
}
