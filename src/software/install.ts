// Effects for one software release: free space, directory, buildout.cfg,
// buildout run, .completed marker; and removal (slapgrid.md §3, §3.1, §3.2).
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { userByUid } from '../util/passwd.js';
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
  log: Logger;
  label: string;
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
  const chown = (file: string) => {
    if (options.user) chownSync(file, options.user.uid, options.user.gid);
  };
  if (!existsSync(sp)) {
    mkdirSync(sp);
    chmodSync(sp, 0o755);
  }
  chown(sp);
  const cache = path.join(sp, 'extends-cache');
  mkdirSync(cache, { recursive: true });
  chown(cache);
  const cfg = path.join(sp, 'buildout.cfg');
  if (!existsSync(cfg)) {
    writeFileSync(cfg, softwareBuildoutCfg(options.url, options.sharedPartList, options.buildTimePartList), { mode: 0o644 });
    chown(cfg);
  }
  await runBuildout({
    command: options.buildoutCommand,
    args: softwareBuildoutArgs(sp, { develop: options.develop }),
    cwd: sp,
    user: options.user,
    home: sp,
    log: options.log,
    label: options.label,
  });
}

/** Written after `available` was reported, so that a lost report means a rebuild and a new report. */
export function markCompleted(softwarePath: string): void {
  writeFileSync(path.join(softwarePath, COMPLETED_MARKER), new Date().toString());
}

export function isCompleted(softwareRoot: string, hash: string): boolean {
  return existsSync(path.join(softwareRoot, hash, COMPLETED_MARKER));
}

/** rm -rf, making read-only directories writable when that is what stops it (non-root runs). */
export function removeTree(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EACCES' && (error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
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

/** software_root entries for --garbage-collect. */
export function listSoftwareDirs(softwareRoot: string): { name: string; hasBuildoutCfg: boolean }[] {
  return readdirSync(softwareRoot, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => ({ name: entry.name, hasBuildoutCfg: existsSync(path.join(softwareRoot, entry.name, 'buildout.cfg')) }));
}
