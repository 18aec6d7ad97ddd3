// The promise files of a partition (slapgrid.md §6.3), under
// `<partition>/.slapgrid/promise/`: result/<title>.status.json,
// cache/<title>, log/<title>.log. The directories are root's (group: the
// partition's, 0750) so the partition cannot swap them for links to files
// root would then write; the files are the partition user's, as the
// reference's. Every write is temp file + fsync + rename.
import {
  closeSync, constants, fchownSync, fstatSync, fsyncSync, lstatSync, mkdirSync, openSync, readSync, renameSync,
  rmSync, statSync, writeSync, chownSync, chmodSync,
} from 'node:fs';
import path from 'node:path';
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

function ensureRootDir(dir: string, gid: number): void {
  try {
    mkdirSync(dir, { mode: 0o750 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory (a link or a file put there?); remove it`);
  if (process.getuid?.() === 0 && (st.uid !== 0 || st.gid !== gid)) chownSync(dir, 0, gid);
  if ((st.mode & 0o777) !== 0o750) chmodSync(dir, 0o750);
}

/** Creates .slapgrid/promise/{result,cache,log} and drops the reference's deprecated files. */
export function preparePromiseDirs(partition: PartitionRef): PromiseDirs {
  const dirs = promiseDirs(partition.path);
  for (const dir of [dirs.slapgrid, dirs.root, dirs.result, dirs.cache, dirs.log]) ensureRootDir(dir, partition.gid);
  for (const name of DEPRECATED_FILES) rmSync(path.join(dirs.root, name), { force: true });
  rmSync(path.join(dirs.root, 'history'), { recursive: true, force: true });
  return dirs;
}

/**
 * Writes `content` to `file` atomically, owned by uid:gid. The temp file is
 * created with O_EXCL|O_NOFOLLOW so that nothing planted at its name is followed.
 */
export function writeOwnedAtomic(file: string, content: string, owner: { uid: number; gid: number }, mode = 0o644): void {
  const tmp = `${file}.tmp`;
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    writeSync(fd, content);
    if (process.getuid?.() === 0) fchownSync(fd, owner.uid, owner.gid);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/** Reads a regular file (not through a link), at most `max` bytes from its end; undefined when absent. */
export function readTail(file: string, max: number): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return undefined;
    const length = Math.min(st.size, max);
    const buffer = Buffer.alloc(length);
    const read = readSync(fd, buffer, 0, length, st.size - length);
    return buffer.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function readJson<T>(file: string): T | undefined {
  const text = readTail(file, 1024 * 1024);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined; // invalid: as absent (the reference ignores an invalid cache)
  }
}

export function readStatus(dirs: PromiseDirs, title: string): StatusFile | undefined {
  const status = readJson<StatusFile>(resultFile(dirs, title));
  return status && typeof status.result === 'object' && status.result !== null ? status : undefined;
}

export function readCache(dirs: PromiseDirs, title: string): CacheFile | undefined {
  const cache = readJson<CacheFile>(cacheFile(dirs, title));
  return cache && typeof cache.next_run_after === 'number' && typeof cache.module_file === 'string' ? cache : undefined;
}

export function writeStatus(dirs: PromiseDirs, status: StatusFile, owner: PartitionRef): void {
  writeOwnedAtomic(resultFile(dirs, status.title), JSON.stringify(status), owner);
}

export function writeCache(dirs: PromiseDirs, title: string, cache: CacheFile, owner: PartitionRef): void {
  writeOwnedAtomic(cacheFile(dirs, title), JSON.stringify(cache), owner);
}

/** mtime in seconds (float, as Python's os.path.getmtime), or undefined when the file is gone. */
export function mtimeSeconds(file: string): number | undefined {
  try {
    return statSync(file).mtimeMs / 1000;
  } catch {
    return undefined;
  }
}

export function readLogTail(dirs: PromiseDirs, title: string): string {
  return readTail(logFile(dirs, title), LOG_TAIL_BYTES) ?? '';
}

/**
 * Appends one run's records to the promise log. The directory is root's, so
 * the name cannot be swapped; O_NOFOLLOW refuses a link all the same. Past
 * PROMISE_LOG_MAX_BYTES the file is rewritten with its newer half only.
 */
export function appendLog(dirs: PromiseDirs, title: string, records: string, owner: PartitionRef): void {
  const file = logFile(dirs, title);
  const fd = openSync(file, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o644);
  let size: number;
  try {
    const st = fstatSync(fd);
    if (process.getuid?.() === 0 && (st.uid !== owner.uid || st.gid !== owner.gid)) fchownSync(fd, owner.uid, owner.gid);
    writeSync(fd, records);
    size = st.size + Buffer.byteLength(records);
  } finally {
    closeSync(fd);
  }
  if (size > PROMISE_LOG_MAX_BYTES) {
    const kept = readTail(file, PROMISE_LOG_MAX_BYTES / 2) ?? '';
    const newline = kept.indexOf('\n');
    writeOwnedAtomic(file, newline >= 0 ? kept.slice(newline + 1) : '', owner);
  }
}
