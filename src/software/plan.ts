// Pure decisions of the software loop: which release goes where, what to
// install, remove or leave, and the text of a release's buildout.cfg
// (slapgrid.md §3, §3.2). No file system, no processes.
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { SoftwareReleaseRequest } from './master-link.js';

export const COMPLETED_MARKER = '.completed';

/** md5 of the URL's UTF-8 bytes: the release's directory name under software_root. */
export function urlHash(url: string): string {
  return createHash('md5').update(url, 'utf8').digest('hex');
}

export function softwarePath(softwareRoot: string, url: string): string {
  return path.join(softwareRoot, urlHash(url));
}

/**
 * --only-sr: comma-separated URLs or hashes; an entry matches a release if it
 * equals its hash or its md5 does (so a URL or a hash). Empty entries are ignored,
 * entries are trimmed (the reference does not trim: a likely bug, §11.10).
 */
export function parseOnlySr(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const entries = value.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  return entries;
}

export function matchesOnlySr(hash: string, onlySr: readonly string[] | undefined): boolean {
  if (onlySr === undefined) return true;
  return onlySr.some((entry) => entry === hash || urlHash(entry) === hash);
}

export type SoftwareAction =
  /** build it with buildout, then report available and write .completed */
  | 'install'
  /** .completed exists and no --all/--force: nothing to do, nothing reported */
  | 'up-to-date'
  /** remove the directory (if any) and report destroyed */
  | 'destroy'
  /** not selected by --only-sr: neither installed nor removed */
  | 'filtered'
  /** a requested state the loop does not know */
  | 'ignored';

export interface SoftwareStep {
  url: string;
  hash: string;
  requestedState: string;
  action: SoftwareAction;
}

export interface PlanOptions {
  /** --all / --force: reinstall even completed releases. */
  force: boolean;
  onlySr?: readonly string[] | undefined;
  /** Whether <software_root>/<hash>/.completed exists. */
  isCompleted(hash: string): boolean;
}

export function planSoftware(releases: readonly SoftwareReleaseRequest[], options: PlanOptions): SoftwareStep[] {
  return releases.map(({ url, requestedState }) => {
    const hash = urlHash(url);
    const step = (action: SoftwareAction): SoftwareStep => ({ url, hash, requestedState, action });
    if (!matchesOnlySr(hash, options.onlySr)) return step('filtered');
    if (requestedState === 'available') {
      return step(options.force || !options.isCompleted(hash) ? 'install' : 'up-to-date');
    }
    if (requestedState === 'destroyed') return step('destroy');
    return step('ignored');
  });
}

/**
 * --garbage-collect: directories of software_root named by 32 hex digits that
 * hold a buildout.cfg and are not an available release of this run (filtered
 * releases included, as the reference).
 */
export function planGarbage(
  entries: readonly { name: string; hasBuildoutCfg: boolean }[],
  steps: readonly SoftwareStep[],
): string[] {
  const keep = new Set(
    steps.filter((step) => step.action === 'install' || step.action === 'up-to-date').map((step) => step.hash),
  );
  return entries
    .filter((entry) => /^[0-9a-f]{32}$/.test(entry.name) && entry.hasBuildoutCfg && !keep.has(entry.name))
    .map((entry) => entry.name)
    .sort();
}

/** Multi-line buildout value: first line empty, the others indented (ConfigParser continuation lines). */
function multiline(values: readonly string[]): string {
  return values.map((value) => `\n  ${value}`).join('');
}

/**
 * <software_path>/buildout.cfg, written only if absent (§3.2). A local path
 * is written as is: buildout reads both paths and URLs.
 */
function fileUrlPath(url: string): string {
  try {
    return fileURLToPath(url);
  } catch {
    return url; // file://host/…: left to buildout
  }
}

export function softwareBuildoutCfg(url: string, sharedPartList: readonly string[], buildTimePartList: readonly string[]): string {
  if (/[\r\n]/.test(url)) throw new Error(`software release URL contains a line break: ${JSON.stringify(url)}`);
  return (
    '[buildout]\n' +
    // A file: URL as its path: zc.buildout resolves a profile's relative
    // directories (download-cache, eggs-directory) against a local file, not a URL.
    `extends = ${url.startsWith('file://') ? fileUrlPath(url) : url}\n` +
    `shared-part-list =${multiline(sharedPartList)}\n` +
    `build-time-part-list =${multiline(buildTimePartList)}\n`
  );
}

export interface BuildoutArgsOptions {
  /** --all / --force: no -N (buildout may look for newer eggs). */
  develop: boolean;
  /** --buildout-debug: -D (buildout's debugger on error). */
  debug?: boolean;
}

/**
 * Arguments after the buildout command itself, as the reference (§3.2):
 * -U (ignore ~/.buildout/default.cfg), extends-cache and directory, -N unless
 * develop, -c buildout.cfg. Networkcache options are out of scope.
 */
export function softwareBuildoutArgs(softwarePathValue: string, options: BuildoutArgsOptions): string[] {
  return [
    ...(options.debug ? ['-D'] : []),
    '-U',
    `buildout:extends-cache=${path.join(softwarePathValue, 'extends-cache')}`,
    `buildout:directory=${softwarePathValue}`,
    ...(options.develop ? [] : ['-N']),
    '-c',
    path.join(softwarePathValue, 'buildout.cfg'),
  ];
}
