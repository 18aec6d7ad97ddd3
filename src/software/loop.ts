// The software loop (`slapos node software`, slapgrid.md §3): ask the master
// for this computer's releases, plan, then apply step by step in the
// master's order. A failing release is reported and logged, never stops the
// next one; the run then exits 1.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { BuildoutFailedError } from './buildout.js';
import { installSoftware, isCompleted, listSoftwareDirs, markCompleted, removeTree, type SoftwareUser } from './install.js';
import type { SoftwareMasterLink } from './master-link.js';
import { planGarbage, planSoftware, type SoftwareStep } from './plan.js';
import { UnreadableReleaseError } from './readable.js';
import type { CacheSettings } from '../networkcache/settings.js';
import { buildoutCacheArgs } from '../networkcache/settings.js';
import { CacheForcedError, installFromCache, uploadAfterBuild } from './cache-step.js';

export interface SoftwareLoopOptions {
  /** Terminal progress of each build: started, each buildout line, ended. */
  progress?: { start(url: string): void; line(line: string): void; end(): void };
  softwareRoot: string;
  /** Checked to exist, as the reference (supervisord's files live there). */
  instanceRoot: string;
  buildoutCommand: string[];
  /** undefined: run buildout as ourselves (not root). */
  user: SoftwareUser | undefined;
  minFreeSpace: number;
  sharedPartList: readonly string[];
  buildTimePartList: readonly string[];
  /** --all / --force */
  force: boolean;
  onlySr?: readonly string[] | undefined;
  garbageCollect: boolean;
  /** --buildout-debug: buildout runs with -D. */
  buildoutDebug?: boolean;
  log: Logger;
  /** [networkcache]: download before building, upload after (src/software/cache-step.ts). */
  cache?: CacheSettings | undefined;
  /** Between failed upload tries (tests). */
  uploadRetryDelayMs?: number;
}

export interface SoftwareResult {
  url: string;
  hash: string;
  path: string;
}

export interface SoftwareSummary {
  installed: SoftwareResult[];
  upToDate: SoftwareResult[];
  destroyed: SoftwareResult[];
  failed: (SoftwareResult & { action: 'install' | 'destroy'; error: string })[];
  filtered: SoftwareResult[];
  ignored: (SoftwareResult & { requestedState: string })[];
  garbageCollected: string[];
}

export function emptySummary(): SoftwareSummary {
  return { installed: [], upToDate: [], destroyed: [], failed: [], filtered: [], ignored: [], garbageCollected: [] };
}

function checkDirectory(dir: string, key: string): void {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new Error(`[slapos] ${key} = ${dir} is not a directory (run slapos node format first)`);
  }
}

/** Runs one software loop; the caller holds the pid file. Exit status: 0, or 1 if a release failed. */
export async function processSoftwareReleases(
  link: SoftwareMasterLink,
  options: SoftwareLoopOptions,
): Promise<{ exitCode: 0 | 1; summary: SoftwareSummary; steps: SoftwareStep[] }> {
  const { log } = options;
  checkDirectory(options.softwareRoot, 'software_root');
  checkDirectory(options.instanceRoot, 'instance_root');
  const releases = await link.softwareReleases();
  const steps = planSoftware(releases, {
    force: options.force,
    onlySr: options.onlySr,
    isCompleted: (hash) => isCompleted(options.softwareRoot, hash),
  });
  const summary = emptySummary();
  for (const step of steps) {
    const result: SoftwareResult = { url: step.url, hash: step.hash, path: path.join(options.softwareRoot, step.hash) };
    switch (step.action) {
      case 'filtered':
        summary.filtered.push(result);
        break;
      case 'ignored':
        log.warn({ code: 'SOFTWARE_STATE_UNKNOWN', software_release: step.url, state: step.requestedState }, 'unknown requested state, ignored');
        summary.ignored.push({ ...result, requestedState: step.requestedState });
        break;
      case 'up-to-date':
        log.debug({ software_release: step.url, hash: step.hash }, 'already installed');
        summary.upToDate.push(result);
        break;
      case 'install': {
        const error = await applyInstall(link, options, result);
        if (error === undefined) summary.installed.push(result);
        else summary.failed.push({ ...result, action: 'install', error });
        break;
      }
      case 'destroy': {
        const error = await applyDestroy(link, options, result);
        if (error === undefined) summary.destroyed.push(result);
        else summary.failed.push({ ...result, action: 'destroy', error });
        break;
      }
    }
  }
  if (options.garbageCollect) {
    for (const name of planGarbage(listSoftwareDirs(options.softwareRoot), steps)) {
      const dir = path.join(options.softwareRoot, name);
      log.info({ path: dir }, 'garbage collection: removing unused software');
      removeTree(dir);
      summary.garbageCollected.push(dir);
    }
  }
  return { exitCode: summary.failed.length > 0 ? 1 : 0, summary, steps };
}

async function reportError(link: SoftwareMasterLink, log: Logger, url: string, message: string): Promise<void> {
  try {
    await link.error(url, message);
  } catch (error) {
    // As the reference: a failure to report the failure is logged, not fatal.
    log.error({ code: 'MASTER_REPORT_FAILED', err: error }, 'could not report the error to the master');
  }
}

async function applyInstall(link: SoftwareMasterLink, options: SoftwareLoopOptions, sr: SoftwareResult): Promise<string | undefined> {
  const log = options.log.child({ software_release: sr.url });
  log.info({ path: sr.path }, 'installing');
  try {
    await link.building(sr.url);
    options.progress?.start(sr.url);
    const cacheStep = options.cache
      ? { cache: options.cache, url: sr.url, softwarePath: sr.path, user: options.user, minFreeSpace: options.minFreeSpace, log }
      : undefined;
    const fromCache = cacheStep !== undefined && (await installFromCache(cacheStep));
    if (!fromCache) await installSoftware({
      url: sr.url,
      softwarePath: sr.path,
      buildoutCommand: options.buildoutCommand,
      user: options.user,
      minFreeSpace: options.minFreeSpace,
      sharedPartList: options.sharedPartList,
      buildTimePartList: options.buildTimePartList,
      develop: options.force,
      debug: Boolean(options.buildoutDebug),
      log,
      label: sr.hash,
      extraArgs: options.cache ? buildoutCacheArgs(options.cache) : [],
      onLine: options.progress ? (line) => options.progress?.line(line) : undefined,
    });
    options.progress?.end();
    if (!fromCache && cacheStep) {
      await uploadAfterBuild({ ...cacheStep, ...(options.uploadRetryDelayMs !== undefined ? { retryDelayMs: options.uploadRetryDelayMs } : {}) });
    }
    await link.available(sr.url);
    markCompleted(sr.path);
    log.info('installed');
    return undefined;
  } catch (error) {
    options.progress?.end();
    const message = error instanceof BuildoutFailedError || error instanceof UnreadableReleaseError || error instanceof CacheForcedError ? error.message : String((error as Error).stack ?? error);
    log.error({ code: 'SOFTWARE_FAILED', hash: sr.hash, error: message }, 'failed');
    await reportError(link, log, sr.url, message);
    return message;
  }
}

async function applyDestroy(link: SoftwareMasterLink, options: SoftwareLoopOptions, sr: SoftwareResult): Promise<string | undefined> {
  const log = options.log.child({ software_release: sr.url });
  try {
    if (existsSync(sr.path)) {
      log.info({ path: sr.path }, 'removing');
      removeTree(sr.path);
    }
    await link.destroyed(sr.url);
    return undefined;
  } catch (error) {
    const message = `cannot destroy software release ${sr.url} (${sr.path}): ${(error as Error).message}`;
    log.error(message);
    await reportError(link, log, sr.url, message);
    return message;
  }
}
