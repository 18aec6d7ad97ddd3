// The promise files of a partition (slapgrid.md §6.3), under
// `<partition>/.slapgrid/promise/`: result/<title>.status.json,
// cache/<title>, log/<title>.log. The directories are root's (group: the
// partition's, 0750) so the partition cannot swap them for links to files
// root would then write; the files are the partition user's, as the
// reference's. Every access goes through safe-fs, beneath the partition
// directory: no link followed in any component, no FIFO opened for waiting.
import path from 'node:path';
import {
  appendBeneath, mkdirBeneath, readBeneath, relativeTo, removeBeneath, statBeneath, unlinkBeneath, writeBeneath,
} from '../safe-fs/index.js';
import type { CacheFile, PartitionRef, StatusFile } from './types.js';

/** A promise log grows by a few lines per run; past this size its older half is dropped. */
export const PROMISE_LOG_MAX_BYTES = 1024 * 1024;
/** How much of a log's end is read for the run history. */
const LOG_TAIL_BYTES = 64 * 1024;

export interface PromiseDirs {
  slapgrid: string;
  root: string;
  result: string;
  cache: string;
  log: string;
}

export function promiseDirs(partitionPath: string): PromiseDirs {
  const slapgrid = path.join(partitionPath, '.slapgrid');
  const root = path.join(slapgrid, 'promise');
  return { slapgrid, root, result: path.join(root, 'result'), cache: path.join(root, 'cache'), log: path.join(root, 'log') };
}

export const resultFile = (dirs: PromiseDirs, title: string) => path.join(dirs.result, `${title}.status.json`);
export const cacheFile = (dirs: PromiseDirs, title: string) => path.join(dirs.cache, title);
export const logFile = (dirs: PromiseDirs, title: string) => path.join(dirs.log, `${title}.log`);

/** Files the reference no longer writes, deleted on every run (§6.3). */
const DEPRECATED_FILES = ['promise_stats.json', 'promise_status.json', 'global.json', 'public.json'];

/** The partition directory of a promise directory set: the trusted base of every access. */
const baseOf = (dirs: PromiseDirs) => path.dirname(dirs.slapgrid);

/** Creates .slapgrid/promise/{result,cache,log} and drops the reference's deprecated files. */
export function preparePromiseDirs(partition: PartitionRef): PromiseDirs {
  const dirs = promiseDirs(partition.path);
  const base = partition.path;
  for (const dir of [dirs.slapgrid, dirs.root, dirs.result, dirs.cache, dirs.log]) {
    // root:<partition group> 0750, set by descriptor; a link or file in the way is an error.
    mkdirBeneath(base, relativeTo(base, dir), { mode: 0o750, owner: { uid: 0, gid: partition.gid }, enforce: true });
  }
  for (const name of DEPRECATED_FILES) unlinkBeneath(base, relativeTo(base, path.join(dirs.root, name)));
  removeBeneath(base, relativeTo(base, path.join(dirs.root, 'history')));
  return dirs;
}

/**
 * Writes `content` to `file` atomically, owned by uid:gid (safe-fs: temp
 * O_EXCL|O_NOFOLLOW, fchown/fchmod/fsync by descriptor, rename, fsync of the
 * directory). `base`: the trusted directory resolved beneath (default: the
 * file's own directory).
 */
export function writeOwnedAtomic(file: string, content: string, owner: { uid: number; gid: number }, mode = 0o644, base = path.dirname(file)): void {
  writeBeneath(base, relativeTo(base, file), content, { mode, owner });
}

/** Reads a regular file (not through a link), at most `max` bytes from its end; undefined when absent or refused. */
export function readTail(file: string, max: number, base = path.dirname(file)): string | undefined {
  try {
    return readBeneath(base, relativeTo(base, file), { maxBytes: max, tail: true })?.toString('utf8');
  } catch {
    return undefined;
  }
}

function readJson<T>(dirs: PromiseDirs, file: string): T | undefined {
  const text = readTail(file, 1024 * 1024, baseOf(dirs));
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined; // invalid: as absent (the reference ignores an invalid cache)
  }
}

export function readStatus(dirs: PromiseDirs, title: string): StatusFile | undefined {
  const status = readJson<StatusFile>(dirs, resultFile(dirs, title));
  return status && typeof status.result === 'object' && status.result !== null ? status : undefined;
}

export function readCache(dirs: PromiseDirs, title: string): CacheFile | undefined {
  const cache = readJson<CacheFile>(dirs, cacheFile(dirs, title));
  return cache && typeof cache.next_run_after === 'number' && typeof cache.module_file === 'string' ? cache : undefined;
}

export function writeStatus(dirs: PromiseDirs, status: StatusFile, owner: PartitionRef): void {
  writeOwnedAtomic(resultFile(dirs, status.title), JSON.stringify(status), owner, 0o644, baseOf(dirs));
}

export function writeCache(dirs: PromiseDirs, title: string, cache: CacheFile, owner: PartitionRef): void {
  writeOwnedAtomic(cacheFile(dirs, title), JSON.stringify(cache), owner, 0o644, baseOf(dirs));
}

/** mtime in seconds (float, as Python's os.path.getmtime), or undefined when the file is gone. */
export function mtimeSeconds(file: string, base = path.dirname(file)): number | undefined {
  try {
    const st = statBeneath(base, relativeTo(base, file));
    return st === undefined ? undefined : st.mtimeMs / 1000;
  } catch {
    return undefined;
  }
}

export function readLogTail(dirs: PromiseDirs, title: string): string {
  return readTail(logFile(dirs, title), LOG_TAIL_BYTES, baseOf(dirs)) ?? '';
}

/**
 * Appends one run's records to the promise log. The directory is root's, so
 * the name cannot be swapped; O_NOFOLLOW refuses a link all the same. Past
 * PROMISE_LOG_MAX_BYTES the file is rewritten with its newer half only.
 */
export function appendLog(dirs: PromiseDirs, title: string, records: string, owner: PartitionRef): void {
  const file = logFile(dirs, title);
  const base = baseOf(dirs);
  const size = appendBeneath(base, relativeTo(base, file), records, { mode: 0o644, owner });
  if (size > PROMISE_LOG_MAX_BYTES) {
    const kept = readTail(file, PROMISE_LOG_MAX_BYTES / 2, base) ?? '';
    const newline = kept.indexOf('\n');
    writeOwnedAtomic(file, newline >= 0 ? kept.slice(newline + 1) : '', owner, 0o644, base);
  }
}
