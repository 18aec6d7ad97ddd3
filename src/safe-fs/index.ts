// The one module through which root touches a hostile tree: a partition's
// directory (its user owns it and everything in it) and software_root (the
// software user's). See docs/design.md, "Hostile trees".
//
// Every path is given as a trusted base (a directory whose own entry the
// tree's user cannot replace: instance_root, a partition directory, whose
// parent is root's, software_root) and a path relative to it. Resolution
// never follows a link, in any component (openat2 RESOLVE_NO_SYMLINKS |
// RESOLVE_BENEATH, or a per-component O_NOFOLLOW walk on older kernels);
// ownership and mode are set on the open descriptor; reads never block (a
// FIFO is refused, not opened for waiting) and are capped; removal never
// follows a link out of the tree and never enters another mount.
import {
  closeSync, constants as fsc, fchmodSync, fchownSync, fstatSync, fsyncSync, readSync, writeSync, type Stats,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { isNativeError, native, type SafeEntryType } from '../native/index.js';

export type { SafeEntryType };

export interface Owner {
  uid: number;
  gid: number;
}

/** Default cap of a read: node-side files are small; 1 MiB. */
export const DEFAULT_MAX_BYTES = 1024 * 1024;

/** A path under a hostile tree that root refused to use (link, FIFO, oversized, wrong type). */
export class UnsafePathError extends Error {
  override name = 'UnsafePathError';
  constructor(readonly file: string, readonly reason: string, readonly code?: string) {
    super(`${file}: ${reason}`);
  }
}

const REASONS: Record<string, string> = {
  ELOOP: 'a symbolic link in the path; refused',
  EXDEV: 'outside its tree; refused',
  ENOTDIR: 'a component of the path is not a directory',
  EISDIR: 'is a directory where a file is expected',
  ENXIO: 'is a FIFO or socket; refused',
};

const joinShown = (base: string, rel: string) => (rel === '' || rel === '.' ? base : path.join(base, rel));

function wrap(error: unknown, base: string, rel: string): Error {
  if (isNativeError(error) || (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === 'string')) {
    const code = (error as NodeJS.ErrnoException).code!;
    const reason = REASONS[code];
    if (reason !== undefined) return new UnsafePathError(joinShown(base, rel), reason, code);
    const err = new Error(`${joinShown(base, rel)}: ${code}: ${error.message}`) as NodeJS.ErrnoException;
    err.code = code;
    return err;
  }
  return error as Error;
}

const codeOf = (error: unknown) => (error as NodeJS.ErrnoException).code;

/** `full` as a path relative to `base`; throws when it is not beneath it. */
export function relativeTo(base: string, full: string): string {
  const rel = path.relative(base, full);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new UnsafePathError(full, `not beneath ${base}`);
  return rel;
}

let forceWalk = false;
/** Tests only: use the per-component walk even where openat2 exists. */
export function setForceWalk(value: boolean): void {
  forceWalk = value;
}

/** Opens base/rel without following any link; the raw building block. */
export function openBeneath(base: string, rel: string, flags: number, mode = 0): number {
  try {
    return native().openBeneath(base, rel, flags, mode, forceWalk);
  } catch (error) {
    throw wrap(error, base, rel);
  }
}

function withFd<T>(fd: number, fn: (fd: number) => T): T {
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

/** lstat-like: the Stats of base/rel itself (a link is reported as a link), or undefined when absent. */
export function statBeneath(base: string, rel: string): Stats | undefined {
  const k = native().safeFsConstants;
  let fd: number;
  try {
    fd = openBeneath(base, rel, k.O_PATH);
  } catch (error) {
    // O_PATH|O_NOFOLLOW opens a link in the last component itself; ELOOP is one earlier in the path.
    if (codeOf(error) === 'ENOENT') return undefined;
    throw error;
  }
  return withFd(fd, (d) => fstatSync(d));
}

export interface ReadOptions {
  /** Larger files are refused (or, with `tail`, only their end is read). */
  maxBytes?: number;
  /** Read the last maxBytes instead of refusing a larger file. */
  tail?: boolean;
}

/** Reads a regular file; undefined when absent. A link, FIFO, directory or oversized file is an UnsafePathError. */
export function readBeneath(base: string, rel: string, options: ReadOptions = {}): Buffer | undefined {
  const max = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const k = native().safeFsConstants;
  let fd: number;
  try {
    fd = openBeneath(base, rel, fsc.O_RDONLY | k.O_NONBLOCK | k.O_NOCTTY);
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return undefined;
    throw error;
  }
  return withFd(fd, (d) => {
    const st = fstatSync(d);
    const shown = joinShown(base, rel);
    if (!st.isFile()) throw new UnsafePathError(shown, `not a regular file (${st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : 'special'}); refused`);
    if (st.size > max && !options.tail) throw new UnsafePathError(shown, `larger than ${max} bytes; refused`);
    const start = st.size > max ? st.size - max : 0;
    const buffer = Buffer.alloc(Math.min(st.size, max));
    let read = 0;
    while (read < buffer.length) {
      const n = readSync(d, buffer, read, buffer.length - read, start + read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read);
  });
}

export function readTextBeneath(base: string, rel: string, options: ReadOptions = {}): string | undefined {
  return readBeneath(base, rel, options)?.toString('utf8');
}

/** Opens a directory beneath base for *At calls (O_RDONLY so that it can be fsynced). */
function openDir(base: string, rel: string): number {
  const k = native().safeFsConstants;
  return openBeneath(base, rel, fsc.O_RDONLY | k.O_DIRECTORY | k.O_NONBLOCK);
}

export interface WriteOptions {
  /** Mode set with fchmod (not filtered by the umask). Default 0644. */
  mode?: number;
  /** fchown on the descriptor (only when root). */
  owner?: Owner | undefined;
}

function fillFd(fd: number, content: string | Buffer): void {
  const data = typeof content === 'string' ? Buffer.from(content) : content;
  let written = 0;
  while (written < data.length) written += writeSync(fd, data, written, data.length - written);
}

/** The temporary name of an atomic write of `name` (dot, name, pid of the writer, random, .tmp). */
const tempName = (name: string) => `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
const TEMP_NAME = /^\.(.+)\.(\d+)\.[0-9a-f]{8}\.tmp$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return codeOf(error) === 'EPERM';
  }
}

/**
 * Removes the temporary files that writers of these names left when they were
 * killed between creating and renaming them (their pid is gone), so that a
 * killed write leaves nothing once the next one succeeds. Only plain files
 * named as ours are unlinked, through the directory's descriptor.
 */
function removeDeadTemps(dirfd: number, names: ReadonlySet<string>): void {
  for (const entry of native().listAt(dirfd)) {
    const m = TEMP_NAME.exec(entry.name);
    if (!m || entry.type !== 'file' || !names.has(m[1] as string)) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || processAlive(pid)) continue;
    try {
      native().unlinkAt(dirfd, entry.name, false);
    } catch {
      // removed meanwhile
    }
  }
}

/**
 * Writes base/rel atomically: a fresh temporary name in the same directory
 * (O_CREAT|O_EXCL|O_NOFOLLOW), fchmod, fchown, fsync on the descriptor,
 * rename, fsync of the directory. The directory is reached without links.
 */
export function writeBeneath(base: string, rel: string, content: string | Buffer, options: WriteOptions = {}): void {
  const name = path.basename(rel);
  const dirRel = path.dirname(rel);
  const dirfd = openDir(base, dirRel === '.' ? '' : dirRel);
  try {
    const tmp = tempName(name);
    let fd: number;
    try {
      fd = native().openAt(dirfd, tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    } catch (error) {
      throw wrap(error, base, path.join(dirRel, tmp));
    }
    try {
      withFd(fd, (d) => {
        fillFd(d, content);
        fchmodSync(d, options.mode ?? 0o644);
        if (options.owner && process.getuid?.() === 0) fchownSync(d, options.owner.uid, options.owner.gid);
        fsyncSync(d);
      });
      native().renameAt(dirfd, tmp, name);
    } catch (error) {
      try {
        native().unlinkAt(dirfd, tmp, false);
      } catch {
        // best effort
      }
      throw wrap(error, base, rel);
    }
    fsyncSync(dirfd);
    removeDeadTemps(dirfd, new Set([name]));
  } finally {
    closeSync(dirfd);
  }
}

export interface ManyWrite {
  base: string;
  rel: string;
  content: string | Buffer;
  mode: number;
  owner?: Owner | undefined;
}

/**
 * Many files with the same guarantee as writeBeneath, the fsyncs running
 * concurrently (the journal commits them in a few batches): every temporary
 * file is written and synced, then all are renamed in order, then each
 * directory is synced once.
 */
export async function writeManyBeneath(items: readonly ManyWrite[], concurrency = 16): Promise<void> {
  const { fsync } = await import('node:fs');
  const fsyncAsync = (fd: number) => new Promise<void>((resolve, reject) => fsync(fd, (error) => (error ? reject(error) : resolve())));
  const dirs = new Map<string, number>();
  const temps: Array<{ dirfd: number; tmp: string; name: string; item: ManyWrite }> = [];
  try {
    for (const item of items) {
      const dirRel = path.dirname(item.rel) === '.' ? '' : path.dirname(item.rel);
      const key = `${item.base}\0${dirRel}`;
      let dirfd = dirs.get(key);
      if (dirfd === undefined) {
        dirfd = openDir(item.base, dirRel);
        dirs.set(key, dirfd);
      }
      const name = path.basename(item.rel);
      const tmp = tempName(name);
      temps.push({ dirfd, tmp, name, item });
    }
    let next = 0;
    const worker = async () => {
      while (next < temps.length) {
        const t = temps[next++]!;
        let fd: number;
        try {
          fd = native().openAt(t.dirfd, t.tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
        } catch (error) {
          throw wrap(error, t.item.base, t.item.rel);
        }
        try {
          fillFd(fd, t.item.content);
          fchmodSync(fd, t.item.mode);
          if (t.item.owner && process.getuid?.() === 0) fchownSync(fd, t.item.owner.uid, t.item.owner.gid);
          await fsyncAsync(fd);
        } finally {
          closeSync(fd);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, temps.length) }, worker));
    for (const t of temps) native().renameAt(t.dirfd, t.tmp, t.name);
    await Promise.all([...dirs.values()].map((fd) => fsyncAsync(fd)));
    const written = new Map<number, Set<string>>();
    for (const t of temps) written.set(t.dirfd, (written.get(t.dirfd) ?? new Set()).add(t.name));
    for (const [dirfd, names] of written) removeDeadTemps(dirfd, names);
  } catch (error) {
    for (const t of temps) {
      try {
        native().unlinkAt(t.dirfd, t.tmp, false);
      } catch {
        // renamed already, or never created
      }
    }
    throw error;
  } finally {
    for (const fd of dirs.values()) closeSync(fd);
  }
}

/** Writes only when content, mode or owner differ; returns whether it wrote. A link or FIFO there is replaced. */
export function writeIfChangedBeneath(base: string, rel: string, content: string, options: WriteOptions = {}): boolean {
  let current: string | undefined;
  try {
    current = readTextBeneath(base, rel, { maxBytes: Buffer.byteLength(content) + 1 });
  } catch (error) {
    if (!(error instanceof UnsafePathError) || error.code === 'ENOTDIR') throw error;
    current = undefined; // a link/FIFO/oversized file at the name: the rename replaces the name itself
  }
  if (current === content) {
    const st = statBeneath(base, rel);
    const mode = options.mode ?? 0o644;
    if (st && (st.mode & 0o7777) === mode && (!options.owner || process.getuid?.() !== 0 || (st.uid === options.owner.uid && st.gid === options.owner.gid))) return false;
  }
  writeBeneath(base, rel, content, options);
  return true;
}

/**
 * Appends to a regular file (created when absent, owner set by descriptor);
 * a link or FIFO at the name is refused. Returns the size after the append.
 */
export function appendBeneath(base: string, rel: string, content: string | Buffer, options: WriteOptions = {}): number {
  const k = native().safeFsConstants;
  const fd = openBeneath(base, rel, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT | k.O_NONBLOCK, options.mode ?? 0o644);
  return withFd(fd, (d) => {
    const st = fstatSync(d);
    if (!st.isFile()) throw new UnsafePathError(joinShown(base, rel), 'not a regular file; refused');
    if (options.owner && process.getuid?.() === 0 && (st.uid !== options.owner.uid || st.gid !== options.owner.gid)) fchownSync(d, options.owner.uid, options.owner.gid);
    fillFd(d, content);
    return st.size + (typeof content === 'string' ? Buffer.byteLength(content) : content.length);
  });
}

export interface MkdirOptions {
  mode?: number;
  /** Owner of the directories this call creates (by descriptor); existing ones are left as they are. */
  owner?: Owner | undefined;
  /** Also enforce mode and owner on the last directory when it existed (a directory root owns: .slapgrid). */
  enforce?: boolean;
}

/**
 * Creates base/rel and its missing parents, component by component without
 * following links; chowns (by descriptor) only what it created. Returns the
 * relative paths it created. Something that is not a directory in the way is
 * an UnsafePathError.
 */
export function mkdirBeneath(base: string, rel: string, options: MkdirOptions = {}): string[] {
  const mode = options.mode ?? 0o755;
  const k = native().safeFsConstants;
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new UnsafePathError(joinShown(base, rel), 'outside its tree; refused');
  const created: string[] = [];
  let dirfd = openDir(base, '');
  try {
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i]!;
      const sofar = parts.slice(0, i + 1).join('/');
      let made: boolean;
      try {
        made = native().mkdirAt(dirfd, name, mode);
      } catch (error) {
        throw wrap(error, base, sofar);
      }
      let next: number;
      try {
        next = native().openAt(dirfd, name, fsc.O_RDONLY | k.O_DIRECTORY | k.O_NONBLOCK, 0);
      } catch (error) {
        throw wrap(error, base, sofar);
      }
      closeSync(dirfd);
      dirfd = next;
      if (made || (options.enforce && i === parts.length - 1)) {
        fchmodSync(dirfd, mode);
        if (options.owner && process.getuid?.() === 0) fchownSync(dirfd, options.owner.uid, options.owner.gid);
        if (made) created.push(sofar);
      }
    }
  } finally {
    closeSync(dirfd);
  }
  return created;
}

/** Sets mode/owner of base/rel by descriptor (a link is refused; a FIFO is opened without blocking). */
export function chownBeneath(base: string, rel: string, owner: Owner, mode?: number): void {
  const k = native().safeFsConstants;
  const fd = openBeneath(base, rel, fsc.O_RDONLY | k.O_NONBLOCK | k.O_NOCTTY);
  withFd(fd, (d) => {
    if (process.getuid?.() === 0) fchownSync(d, owner.uid, owner.gid);
    if (mode !== undefined) fchmodSync(d, mode);
  });
}

/** Renames a name to another in the same directory beneath base (links are names here, never followed). */
export function renameBeneath(base: string, from: string, to: string): void {
  const dirRel = path.dirname(from);
  if (path.dirname(to) !== dirRel) throw new UnsafePathError(joinShown(base, to), `not in the directory of ${from}`);
  const dirfd = openDir(base, dirRel === '.' ? '' : dirRel);
  withFd(dirfd, (d) => {
    try {
      native().renameAt(d, path.basename(from), path.basename(to));
    } catch (error) {
      throw wrap(error, base, from);
    }
  });
}

/** Removes one name (a file, a link itself, an empty directory); false when absent. */
export function unlinkBeneath(base: string, rel: string): boolean {
  const name = path.basename(rel);
  const dirRel = path.dirname(rel);
  let dirfd: number;
  try {
    dirfd = openDir(base, dirRel === '.' ? '' : dirRel);
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return false;
    throw error;
  }
  return withFd(dirfd, (d) => {
    try {
      return native().unlinkAt(d, name, false);
    } catch (error) {
      if (codeOf(error) === 'EISDIR') return native().unlinkAt(d, name, true);
      throw wrap(error, base, rel);
    }
  });
}

/**
 * Removes base/rel and everything under it (with `keepTop`, only what is
 * under it), never following a link and never entering another mount.
 * Returns the mount points found and left in place.
 */
export function removeBeneath(base: string, rel: string, options: { keepTop?: boolean } = {}): string[] {
  try {
    return native().removeTreeBeneath(base, rel, options.keepTop === true);
  } catch (error) {
    throw wrap(error, base, rel);
  }
}

/** The entries of a directory (not through a link); undefined when absent. */
export function listBeneath(base: string, rel: string): { name: string; type: SafeEntryType }[] | undefined {
  let dirfd: number;
  try {
    dirfd = openDir(base, rel);
  } catch (error) {
    if (codeOf(error) === 'ENOENT') return undefined;
    throw error;
  }
  return withFd(dirfd, (d) => native().listAt(d));
}
