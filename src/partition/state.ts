// Reading and writing a partition's node-side files. The partition directory
// belongs to the partition user, who may plant symlinks there: files are
// written to a fresh temporary name (O_EXCL, so never through a link) and
// renamed over the target, and read without following links.
import {
  chownSync, closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync,
  rmSync, statSync, unlinkSync, writeFileSync, chmodSync,
} from 'node:fs';
import type { BackoffState } from './backoff.js';
import type { PartitionFiles } from './files.js';

export interface Owner {
  uid: number;
  gid: number;
}

/** Writes `content` to `file` atomically (temp + rename); optionally chowned. */
export function writeFileAtomic(file: string, content: string, mode: number, owner?: Owner): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, content, { mode, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    unlinkSync(tmp); // left by a killed run of ours (same pid after a reboot)
    writeFileSync(tmp, content, { mode, flag: 'wx' });
  }
  chmodSync(tmp, mode);
  if (owner) chownSync(tmp, owner.uid, owner.gid);
  renameSync(tmp, file);
}

/** Writes only when the content differs; resolves to whether it wrote. */
export function writeIfChanged(file: string, content: string, mode: number, owner?: Owner): boolean {
  const current = readTextNoFollow(file);
  if (current === content) {
    const st = lstatSync(file);
    if ((st.mode & 0o7777) === mode && (!owner || (st.uid === owner.uid && st.gid === owner.gid))) return false;
  }
  writeFileAtomic(file, content, mode, owner);
  return true;
}

export class UnsafeFileError extends Error {
  override name = 'UnsafeFileError';
}

/**
 * Reads a regular file without following a symlink, up to `maxBytes`;
 * undefined when absent. A link, a FIFO or an oversized file is an error
 * (the file is the instance's: root must not read /etc/shadow through it).
 */
export function readTextNoFollow(file: string, maxBytes = 1024 * 1024): string | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new UnsafeFileError(`${file} is a symbolic link; refusing to read it`);
    throw error;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UnsafeFileError(`${file} is not a regular file`);
    if (st.size > maxBytes) throw new UnsafeFileError(`${file} is larger than ${maxBytes} bytes`);
    const buffer = Buffer.alloc(st.size);
    let read = 0;
    while (read < st.size) {
      const n = readSync(fd, buffer, read, st.size - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

export function readTimestampFile(files: PartitionFiles): { content: string; mtimeMs: number } | null {
  try {
    const content = readFileSync(files.timestamp, 'utf8');
    return { content, mtimeMs: statSync(files.timestamp).mtimeMs };
  } catch {
    return null;
  }
}

export function writeTimestamp(files: PartitionFiles, timestamp: string): void {
  writeFileAtomic(files.timestamp, timestamp, 0o644);
}

export function removeFile(file: string): void {
  rmSync(file, { force: true });
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
    return JSON.parse(readFileSync(files.state, 'utf8')) as PartitionState;
  } catch {
    return {};
  }
}

export function writePartitionState(files: PartitionFiles, state: PartitionState): void {
  writeFileAtomic(files.state, `${JSON.stringify(state, null, 2)}\n`, 0o640);
}

/**
 * Creates .slapgrid/ and .slapgrid/log/ owned by root with the partition's
 * group (0750), so the instance can read its logs but not forge the node's
 * state; refuses a .slapgrid that is not a real directory.
 */
export function ensureSlapgridDirs(files: PartitionFiles, owner: Owner): void {
  for (const dir of [files.slapgrid, files.logDir]) {
    try {
      mkdirSync(dir, { mode: 0o750 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const st = lstatSync(dir);
    if (!st.isDirectory()) throw new UnsafeFileError(`${dir} is not a directory; remove it`);
    if (process.getuid?.() === 0 && (st.uid !== 0 || st.gid !== owner.gid)) chownSync(dir, 0, owner.gid);
    if ((st.mode & 0o7777) !== 0o750) chmodSync(dir, 0o750);
  }
}
