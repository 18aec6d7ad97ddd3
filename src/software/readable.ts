// Can the software user read a release given as a local path? Checked before
// building, so that `supply /root/sr/software.cfg` fails with one line naming
// the directory in the way, not with buildout's "internal error … PermissionError".
import { readFileSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The local file of a release URL (an absolute path or a file: URL); undefined for http(s) and others. */
export function localReleasePath(url: string): string | undefined {
  if (url.startsWith('/')) return url;
  if (url.startsWith('file:')) {
    try {
      return fileURLToPath(url);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export interface Reader {
  name: string;
  uid: number;
  /** Primary and supplementary groups. */
  gids: readonly number[];
}

/** Whether `reader` has the permission bits `want` (4 r, 1 x) on a file with these stats (pure; ACLs not considered). */
export function permits(stats: Pick<Stats, 'uid' | 'gid' | 'mode'>, reader: Reader, want: number): boolean {
  if (reader.uid === 0) return true;
  const bits = stats.uid === reader.uid ? (stats.mode >> 6) & 7 : reader.gids.includes(stats.gid) ? (stats.mode >> 3) & 7 : stats.mode & 7;
  return (bits & want) === want;
}

/**
 * The first reason `reader` cannot read `file` and its directory (buildout
 * reads the files beside it), or undefined when it can. Follows symlinks as
 * the reader's open would; `stat` is a parameter for tests.
 */
export function unreadableReason(file: string, reader: Reader, stat: (p: string) => Stats = statSync): string | undefined {
  const dir = path.dirname(file);
  const parts = dir.split('/').filter((p) => p !== '');
  let current = '/';
  for (let i = 0; i <= parts.length; i++) {
    if (i > 0) current = path.join(current, parts[i - 1] as string);
    let stats: Stats;
    try {
      stats = stat(current);
    } catch (error) {
      return `${current}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
    }
    const last = i === parts.length;
    if (!permits(stats, reader, last ? 5 : 1)) return `${current} is not ${last ? 'readable' : 'traversable'} by ${reader.name}`;
  }
  let stats: Stats;
  try {
    stats = stat(file);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? `${file} does not exist` : `${file}: ${(error as Error).message}`;
  }
  if (!permits(stats, reader, 4)) return `${file} is not readable by ${reader.name}`;
  return undefined;
}

/** Supplementary groups of `name` in /etc/group, plus `gid`. */
export function groupsOf(name: string, gid: number, groupFile = '/etc/group'): number[] {
  const gids = new Set([gid]);
  for (const line of readFileSync(groupFile, 'utf8').split('\n')) {
    const [, , id, members = ''] = line.split(':');
    if (id !== undefined && members.split(',').includes(name)) gids.add(Number(id));
  }
  return [...gids];
}

export class UnreadableReleaseError extends Error {
  override name = 'UnreadableReleaseError';
}
