// Effects for one software release: free space, directory, buildout.cfg,
// buildout run, .completed marker; and removal (slapgrid.md §3, §3.1, §3.2).
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { userByUid } from '../users/user.js';
import { mkdirBeneath, removeBeneath, statBeneath, UnsafePathError, writeBeneath } from '../safe-fs/index.js';
import { runBuildout } from './buildout.js';
import { groupsOf, localReleasePath, unreadableReason, UnreadableReleaseError } from './readable.js';
import { COMPLETED_MARKER, softwareBuildoutArgs, softwareBuildoutCfg } from './plan.js';

export class DiskSpaceError extends Error {
  constructor(
    readonly directory: string,
    readonly available: number,
    readonly required: number,
  ) {
    super(
      `Not enough space for ${directory}: ${available} bytes available, ` +
        `${required} required ([slapos] software_min_free_space)`,
    );
    this.name = 'DiskSpaceError';
  }
}

/** Bytes available to non-root users on the file system of `dir` or of its nearest existing ancestor. */
export function freeSpace(dir: string): number {
  let current = path.resolve(dir);
  while (!existsSync(current) && path.dirname(current) !== current) current = path.dirname(current);
  const stats = statfsSync(current);
  return stats.bavail * stats.bsize;
}

export function checkFreeSpace(dir: string, required: number): void {
  const available = freeSpace(dir);
  if (available < required) throw new DiskSpaceError(dir, available, required);
}

export interface SoftwareUser {
  uid: number;
  gid: number;
  name: string;
}

/**
 * Who builds software: the owner of software_root when we are root (never
 * root itself: a release's build code must not run with the node's
 * privileges); ourselves otherwise (root_check = false, tests).
 */
export function softwareUser(softwareRoot: string): SoftwareUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const stats = lstatSync(softwareRoot);
  if (stats.uid === 0) {
    throw new Error(
      `software_root ${softwareRoot} is owned by root: software releases are built as its owner, ` +
        `chown it to the software user ([slapformat] software_user, usually slapsoft)`,
    );
  }
  const entry = userByUid(stats.uid);
  if (!entry) throw new Error(`software_root ${softwareRoot} is owned by uid ${stats.uid}, which has no /etc/passwd entry`);
  return { uid: stats.uid, gid: entry.gid, name: entry.name };
}

export interface InstallOptions {
  url: string;
  softwarePath: string;
  buildoutCommand: string[];
  user: SoftwareUser | undefined;
  minFreeSpace: number;
  sharedPartList: readonly string[];
  buildTimePartList: readonly string[];
  develop: boolean;
  /** buildout -D (--buildout-debug). */
  debug?: boolean;
  log: Logger;
  label: string;
  /** Each buildout output line (terminal progress). */
  onLine?: ((line: string) => void) | undefined;
  /** Appended buildout assignments ([networkcache] options, networkcache.md §6). */
  extraArgs?: readonly string[];
}

/**
 * The release directory, extends-cache and buildout.cfg before buildout. The
 * release directory is the software user's tree: everything below
 * software_root goes through safe-fs (no link followed, owner set by
 * descriptor). A rerun finds extends-cache or buildout.cfg as the software
 * user left them: a link there is refused, never chowned through.
 */
export function prepareSoftwareDir(options: Pick<InstallOptions, 'softwarePath' | 'user' | 'url' | 'sharedPartList' | 'buildTimePartList'>): void {
  const sp = options.softwarePath;
  const root = path.dirname(sp);
  const name = path.basename(sp);
  const owner = options.user ? { uid: options.user.uid, gid: options.user.gid } : undefined;
  mkdirBeneath(root, name, { mode: 0o755, owner, enforce: true });
  mkdirBeneath(root, path.join(name, 'extends-cache'), { mode: 0o755, owner, enforce: true });
  const cfg = statBeneath(root, path.join(name, 'buildout.cfg'));
  if (cfg !== undefined && !cfg.isFile()) throw new UnsafePathError(path.join(sp, 'buildout.cfg'), 'not a regular file; refused (remove it)');
  if (cfg !== undefined && cfg.size > 1024 * 1024) throw new UnsafePathError(path.join(sp, 'buildout.cfg'), 'larger than 1 MiB; refused (remove it)');
  if (cfg === undefined) {
    writeBeneath(root, path.join(name, 'buildout.cfg'), softwareBuildoutCfg(options.url, options.sharedPartList, options.buildTimePartList), { mode: 0o644, owner });
  }
}

/** Builds a release in place; the caller reports and writes .completed afterwards. */
export async function installSoftware(options: InstallOptions): Promise<void> {
  const sp = options.softwarePath;
  const local = localReleasePath(options.url);
  if (local !== undefined && options.user) {
    const { user } = options;
    const why = unreadableReason(local, { name: user.name, uid: user.uid, gids: groupsOf(user.name, user.gid) });
    if (why !== undefined) {
      throw new UnreadableReleaseError(
        `the software user cannot read the release: ${why}; put it where ${user.name} can read it (for example a copy of examples/hello-http under /opt)`,
      );
    }
  }
  checkFreeSpace(sp, options.minFreeSpace);
  prepareSoftwareDir(options);
  await runBuildout({
    command: options.buildoutCommand,
    args: [...softwareBuildoutArgs(sp, { develop: options.develop, debug: options.debug }), ...(options.extraArgs ?? [])],
    cwd: sp,
    user: options.user,
    home: sp,
    log: options.log,
    label: options.label,
    onLine: options.onLine,
  });
}

/** Written after `available` was reported, so that a lost report means a rebuild and a new report. */
export function markCompleted(softwarePath: string): void {
  writeBeneath(path.dirname(softwarePath), path.join(path.basename(softwarePath), COMPLETED_MARKER), new Date().toString(), { mode: 0o644 });
}

export function isCompleted(softwareRoot: string, hash: string): boolean {
  try {
    return statBeneath(softwareRoot, path.join(hash, COMPLETED_MARKER)) !== undefined;
  } catch {
    return false; // a link in the way: not completed
  }
}

/**
 * rm -rf without following links out of the tree nor crossing mounts
 * (safe-fs); making read-only directories writable when that is what stops
 * it, only for non-root runs (development: the tree is our own). Root never
 * changes modes by path in a release (a link there would make it chmod any
 * file); it needs no write permission to remove, so EPERM there is an
 * immutable attribute or a mount, reported as it is.
 */
export function removeTree(dir: string): void {
  try {
    removeBeneath(path.dirname(dir), path.basename(dir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EACCES' && (error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    if (process.getuid?.() === 0) throw error;
    makeWritable(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

function makeWritable(dir: string): void {
  try {
    chmodSync(dir, 0o700);
  } catch {
    return;
  }
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) makeWritable(path.join(dir, entry.name));
  }
}

/** base/rel exists, without following a link (safe-fs); a link in the way: no. */
function hasFile(base: string, rel: string): boolean {
  try {
    return statBeneath(base, rel) !== undefined;
  } catch {
    return false;
  }
}

/** software_root entries for --garbage-collect. */
export function listSoftwareDirs(softwareRoot: string): { name: string; hasBuildoutCfg: boolean }[] {
  return readdirSync(softwareRoot, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => ({ name: entry.name, hasBuildoutCfg: hasFile(softwareRoot, path.join(entry.name, 'buildout.cfg')) }));
}
