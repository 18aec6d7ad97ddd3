// `proxy start --local-software-release-root` ([slapproxy] local_software_release_root),
// as the reference's slapproxy: the master remembers the root it last ran with;
// when it changes, every local-path software URL (software rows and the
// partitions' software_release) under the old root is rebased under the new
// one, e.g. after moving a tree of releases (a checkout) from /old to /new.
// No rebase when one root is inside the other, nor for a URL whose rebased
// file is missing while the old file exists. Decided by pure functions below;
// applied in one transaction, after a backup of an SQLite database.
import path from 'node:path';
import type { Store } from './store.js';

/** The root a master that never had one runs with (the reference's os.sep). */
export const DEFAULT_ROOT = '/';
export const SETTING = 'local_software_release_root';

export type RootChange = 'same' | 'subpath' | 'superpath' | 'rebase';

/** How going from root `current` to root `next` changes the stored URLs (the reference's order of tests). */
export function rootChange(current: string, next: string): RootChange {
  if (current === next) return 'same';
  const rel = path.posix.relative(current, next);
  if (!rel.startsWith('../') && rel !== '..') return 'subpath';
  if (path.posix.basename(rel) === '..') return 'superpath';
  return 'rebase';
}

/** `url` rebased from root `from` to root `to`, or unchanged (not a local path, not under `from`, or its file only at the old place). */
export function rebasedUrl(url: string, from: string, to: string, isFile: (file: string) => boolean): string {
  if (url === '' || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(url)) return url;
  const rel = path.posix.relative(from, path.posix.resolve(from, url));
  if (rel.startsWith('../') || rel === '..') return url;
  const moved = path.posix.join(to, rel);
  if (!isFile(moved) && isFile(url)) return url;
  return moved;
}

export interface RootUpdate {
  change: RootChange;
  from: string;
  to: string;
  /** Old URL → new URL, for the URLs that moved. */
  rebased: Map<string, string>;
  backup?: string | undefined;
}

/**
 * Records `root` as the master's root and rebases the URLs if it changed.
 * `backup` (SQLite) copies the database first and returns the copy's path.
 */
export async function applyReleaseRoot(store: Store, root: string, isFile: (file: string) => boolean, backup?: () => string): Promise<RootUpdate> {
  const to = path.posix.normalize(root);
  if (!path.posix.isAbsolute(to)) throw new Error(`local_software_release_root must be an absolute path, not ${JSON.stringify(root)}`);
  const from = (await store.read((tx) => tx.getSetting(SETTING))) ?? DEFAULT_ROOT;
  const change = rootChange(from, to);
  const update: RootUpdate = { change, from, to, rebased: new Map() };
  if (change === 'same') return update;
  if (change === 'rebase') {
    const urls = await store.read((tx) => tx.listSoftwareUrls());
    for (const url of urls) {
      const moved = rebasedUrl(url, from, to, isFile);
      if (moved !== url) update.rebased.set(url, moved);
    }
    if (update.rebased.size > 0 && backup) update.backup = backup();
  }
  await store.transaction(async (tx) => {
    // Read again under the write lock: another master may have moved it meanwhile (then it rebased already).
    if (((await tx.getSetting(SETTING)) ?? DEFAULT_ROOT) !== from) return;
    for (const [url, moved] of update.rebased) await tx.renameSoftwareUrl(url, moved);
    await tx.setSetting(SETTING, to);
  });
  return update;
}
