// The binary cache around a build (networkcache.md §3): before buildout, a
// release whose directory does not exist yet is taken from the cache when a
// signed, compatible entry downloads and unpacks; otherwise it is built (or,
// for a URL of the force list, reported in error and retried next run).
// After a successful build, it is uploaded when the node is set up to.
// Each outcome and its duration is logged.
import path from 'node:path';
import { downloadRelease, removeStaleDownloads, type CacheUser } from '../networkcache/download.js';
import { EXTRACTED_MARKER } from '../networkcache/member-policy.js';
import { matchPrefix, type CacheSettings } from '../networkcache/settings.js';
import { uploadRelease } from '../networkcache/upload.js';
import { listBeneath, removeBeneath, statBeneath } from '../safe-fs/index.js';
import type { Logger } from '../util/log.js';
import { checkFreeSpace } from './install.js';

export class CacheForcedError extends Error {
  override name = 'CacheForcedError';
}

export interface CacheStep {
  cache: CacheSettings;
  url: string;
  softwarePath: string;
  user: CacheUser | undefined;
  minFreeSpace: number;
  log: Logger;
}

/** True when the release was installed from the cache (no build needed). */
export async function installFromCache(step: CacheStep): Promise<boolean> {
  const { cache, url, log } = step;
  const root = path.dirname(step.softwarePath);
  const hash = path.basename(step.softwarePath);
  const forced = matchPrefix(url, cache.forceList);
  if (forced !== undefined) log.debug({ match: forced }, 'binary cache forced');
  let exists: boolean;
  try {
    exists = statBeneath(root, hash) !== undefined;
  } catch {
    exists = true;
  }
  removeStaging(root, hash, log);
  for (const stale of removeStaleDownloads()) log.info({ path: stale }, 'removed the temporary directory of a killed download');
  // A run killed after the extraction's rename, before reporting: the tree is whole (the rename was its last step).
  if (exists && wholeExtraction(root, hash)) {
    log.info({}, 'installed from the binary cache by an interrupted run: completing it, buildout not run');
    return true;
  }
  if (!exists) {
    checkFreeSpace(step.softwarePath, step.minFreeSpace);
    const outcome = await downloadRelease({ settings: cache, url, hash, softwareRoot: root, user: step.user, log });
    if (outcome.ok) {
      log.info({ seconds: Number(outcome.seconds.toFixed(1)), bytes: outcome.bytes, members: outcome.members, sha512: outcome.sha512.slice(0, 16) },
        'installed from the binary cache: buildout not run');
      return true;
    }
    log.info({ reason: outcome.reason, seconds: Number(outcome.seconds.toFixed(1)) }, forced === undefined ? 'binary cache not used: building it' : 'binary cache not used');
    if (forced !== undefined) throw new CacheForcedError(`Binary cache forced for ${url}, but failed to download, will retry again (${outcome.reason})`);
    return false;
  }
  if (forced !== undefined) throw new CacheForcedError(`Binary cache forced for ${url}, but directory ${step.softwarePath} already exists, will retry again`);
  return false;
}

/** Staging directories of killed extractions (the worker removes them too, but only when it runs again). */
function removeStaging(root: string, hash: string, log: Logger): void {
  try {
    for (const entry of listBeneath(root, '') ?? []) {
      if (!entry.name.startsWith(`.${hash}.extract-`)) continue;
      removeBeneath(root, entry.name);
      log.info({ name: entry.name }, 'removed the staging directory of a killed extraction');
    }
  } catch (error) {
    log.warn({ code: 'CACHE_STAGING_LEFT', err: error }, 'could not remove the staging directory of a killed extraction');
  }
}

/** The extraction marker without `.completed` (with it, the release is done and only --all rebuilds it). */
function wholeExtraction(root: string, hash: string): boolean {
  try {
    return statBeneath(root, `${hash}/${EXTRACTED_MARKER}`)?.isFile() === true && statBeneath(root, `${hash}/.completed`) === undefined;
  } catch {
    return false;
  }
}

/** After a successful build; never fails the release (a failed upload is logged). */
export async function uploadAfterBuild(step: CacheStep & { retryDelayMs?: number }): Promise<void> {
  const { log } = step;
  try {
    const outcome = await uploadRelease({
      settings: step.cache, url: step.url, hash: path.basename(step.softwarePath), softwareRoot: path.dirname(step.softwarePath),
      user: step.user, log, ...(step.retryDelayMs !== undefined ? { retryDelayMs: step.retryDelayMs } : {}),
    });
    if (outcome.uploaded) log.info({ seconds: Number(outcome.seconds.toFixed(1)), bytes: outcome.bytes, sha512: outcome.sha512.slice(0, 16) }, 'uploaded to the binary cache');
    else log.info({ reason: outcome.reason }, 'not uploaded to the binary cache');
  } catch (error) {
    log.warn({ code: 'CACHE_UPLOAD_FAILED', err: error }, 'upload to the binary cache failed');
  }
}
