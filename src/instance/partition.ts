// One partition, from decision to outcome: read its files, decide, run its
// steps with its own log, then record success (.timestamp, state) or failure
// (error log, backoff, error report).
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterFailure } from '../partition/backoff.js';
import { decidePartition, type Decision } from '../partition/decide.js';
import { partitionFiles, type PartitionFiles } from '../partition/files.js';
import { runPartitionPromises } from '../promise-runner/index.js';
import {
  ensureSlapgridDirs, readPartitionState, readTimestampFile, removeFile, writeFileAtomic, writePartitionState, writeTimestamp, type PartitionState,
} from '../partition/state.js';
import type { ComputerPartition } from '../slap/shapes.js';
import { listBeneath, readTextBeneath, relativeTo, removeBeneath, statBeneath, UnsafePathError } from '../safe-fs/index.js';
import { urlHash } from '../software/plan.js';
import { BuildoutFailedError } from '../software/buildout.js';
import type { SupervisorClient } from '../supervisor/client.js';
import { updateSupervisor } from '../supervisor/groups.js';
import type { Logger } from '../util/log.js';
import { parsePasswd, type User } from '../users/user.js';
import type { PartitionDigest } from './digest.js';
import type { InstanceMasterLink } from './master-link.js';
import { isMasterDown } from './master-link.js';
import { partitionLog } from './partition-log.js';
import type { InstanceSettings } from './settings.js';
import { runSteps } from './step.js';
import { stepsFor } from './steps/index.js';
import { PromiseError } from './steps/promises.js';
import type { BuildoutForkServer } from '../executor/fork-server.js';

export interface RunContext {
  settings: InstanceSettings;
  link: InstanceMasterLink;
  /** Started on first use (a run with nothing to do never talks to supervisord). */
  supervisor(): Promise<{ client: SupervisorClient; includeDir: string }>;
  develop: boolean;
  forceStop: boolean;
  log: Logger;
  now(): number;
  /** Applies the changed group files; the loop batches it across partitions (batch.ts). Default: one update now. */
  supervisorUpdate?: (log: Logger) => Promise<void>;
  /** Cached per run: <software>/periodicity values and /etc/passwd. */
  cache: { periodicity: Map<string, number>; passwd?: User[] };
  /** The pass's buildout fork server, when on. */
  buildoutServer?: BuildoutForkServer | undefined;
}

export type Outcome =
  | { kind: 'missing'; error: string }
  | { kind: 'free' }
  | { kind: 'up-to-date' }
  | { kind: 'backoff'; retryAt: number; failures: number; error: string }
  | { kind: 'processed'; reason: string }
  | { kind: 'failed'; error: string; promise: boolean; retryAt: number | undefined };

/** The reference's periodicity: <software>/periodicity when it holds an integer, else maximum_periodicity. */
export function periodicity(ctx: RunContext, softwarePath: string | null): number {
  if (!softwarePath) return ctx.settings.maximumPeriodicity;
  const cached = ctx.cache.periodicity.get(softwarePath);
  if (cached !== undefined) return cached;
  let value = ctx.settings.maximumPeriodicity;
  const file = path.join(softwarePath, 'periodicity');
  try {
    // The release is the software user's tree: read through safe-fs (no link, no FIFO).
    const text = (readTextBeneath(softwarePath, 'periodicity', { maxBytes: 64 }) ?? '').trim();
    if (text === '') throw new Error('absent');
    if (/^-?\d+$/.test(text)) value = Number(text);
    else ctx.log.error({ code: 'PERIODICITY_INVALID', path: file, value: text.slice(0, 40) }, 'periodicity not an integer; using maximum_periodicity');
  } catch (error) {
    // no file: the default; a link or FIFO planted by the software user: logged, the default
    if (error instanceof UnsafePathError) ctx.log.error({ code: 'PERIODICITY_UNSAFE', err: error }, 'periodicity file refused; using maximum_periodicity');
  }
  ctx.cache.periodicity.set(softwarePath, value);
  return value;
}

function partitionUser(ctx: RunContext, files: PartitionFiles): User {
  const st = lstatSync(files.dir);
  if (process.getuid?.() === 0 && (st.uid === 0 || st.gid === 0)) {
    throw new Error(`${files.dir} is owned by root: partition code never runs as root; run slapos node format`);
  }
  ctx.cache.passwd ??= parsePasswd(readFileSync('/etc/passwd', 'utf8'));
  const entry = ctx.cache.passwd.find((e) => e.uid === st.uid);
  return { uid: st.uid, gid: st.gid, name: entry?.name ?? String(st.uid), home: entry?.home ?? files.dir };
}

/** A free partition (destroyed, no release): forget the node's state in it (§4.1 step 3). */
function cleanFree(ctx: RunContext, files: PartitionFiles, id: string): void {
  removeBeneath(files.dir, relativeTo(files.dir, files.slapgrid));
  removeFile(files.timestamp);
  const left = (listBeneath(files.dir, '') ?? []).map((e) => e.name).filter((name) => name !== '.slapos-resource');
  if (left.length > 0) ctx.log.warn({ code: 'FREE_PARTITION_NOT_EMPTY', partition: id, left: left.slice(0, 10), count: left.length }, 'free partition still holds files');
}

async function reportError(ctx: RunContext, id: string, message: string): Promise<void> {
  try {
    await ctx.link.error(id, message);
  } catch (error) {
    if (isMasterDown(error)) throw error;
    ctx.log.warn({ code: 'MASTER_REPORT_FAILED', partition: id, err: error }, 'could not report the error to the master');
  }
}

/**
 * Promises of an up-to-date started partition, in anomaly mode (periodicity
 * honoured; a promise failing three runs in a row bangs, at most once; §4.7).
 * The reference POSTs started or error for every started partition on every
 * run; we report only changes (ok → error, error → ok), which is what a
 * master without access status needs, and keeps a no-op pass cheap.
 */
async function checkAnomaly(ctx: RunContext, id: string, files: PartitionFiles, state: PartitionState, softwarePath: string | null): Promise<Outcome> {
  const s = ctx.settings;
  const user = partitionUser(ctx, files);
  const result = await runPartitionPromises(
    { id, path: files.dir, uid: user.uid, gid: user.gid },
    {
      mode: 'anomaly', timeout: s.promiseTimeout, log: ctx.log, bang: (message) => ctx.link.bang(id, message), softwarePath: softwarePath ?? undefined,
      plugin: { masterUrl: s.masterUrl, computerId: s.computerId, certificateRepository: s.certificateRepository },
    },
  );
  if (result.outcomes.length === 0) return { kind: 'up-to-date' };
  if (result.error) {
    ctx.log.error({ code: 'PROMISE_FAILED', partition: id, error: result.error.split('\n')[0] }, 'promises failed');
    if (!state.anomaly) {
      await reportError(ctx, id, result.error);
      writePartitionState(files, { ...state, anomaly: true });
    }
    return { kind: 'failed', error: result.error, promise: true, retryAt: undefined };
  }
  if (state.anomaly) {
    await ctx.link.started(id);
    writePartitionState(files, { ...state, anomaly: false });
  }
  return { kind: 'up-to-date' };
}

export async function processPartition(loopCtx: RunContext, digest: PartitionDigest, full: () => ComputerPartition, explicit: boolean): Promise<Outcome> {
  const { id, url, timestamp, fingerprint } = digest;
  // Every line about this partition carries its id (and release) in --log-file.
  const ctx: RunContext = { ...loopCtx, log: loopCtx.log.child({ partition: id, ...(url ? { software_release: url } : {}) }) };
  const files = partitionFiles(ctx.settings.instanceRoot, id);
  if (!existsSync(files.dir)) {
    const error = `Partition directory ${files.dir} does not exist.`;
    ctx.log.error(error);
    await reportError(ctx, id, error);
    return { kind: 'missing', error };
  }
  if (digest.requestedState === 'destroyed' && !url) {
    cleanFree(ctx, files, id);
    return { kind: 'free' };
  }
  // As the reference (§4.2 step 1): the transaction file goes for every partition looked at,
  // up to date or not; slapos.slap in the buildout writes a fresh one.
  try {
    removeFile(files.transaction);
  } catch (error) {
    ctx.log.warn({ code: 'TRANSACTION_REMOVE_FAILED', partition: id, path: files.transaction, err: error }, 'could not remove the transaction file');
  }
  const softwarePath = url ? path.join(ctx.settings.softwareRoot, urlHash(url)) : null;
  const state = readPartitionState(files);
  const decision: Decision = decidePartition({
    timestamp, requestedState: digest.requestedState, periodicity: periodicity(ctx, softwarePath),
    develop: ctx.develop, forceStop: ctx.forceStop, explicit, timestampFile: readTimestampFile(files),
    backoff: state.backoff, fingerprint, now: ctx.now(),
  });
  if (decision.action === 'up-to-date') {
    return digest.requestedState === 'started' ? checkAnomaly(ctx, id, files, state, softwarePath) : { kind: 'up-to-date' };
  }
  if (decision.action === 'backoff') {
    ctx.log.info({ partition: id, failures: decision.failures, retry_at: new Date(decision.retryAt).toISOString() }, 'failed before, waiting (--all or --only-cp to retry now)');
    return { kind: 'backoff', retryAt: decision.retryAt, failures: decision.failures, error: decision.lastError };
  }
  if (decision.removeTimestamp) removeFile(files.timestamp);

  let plog;
  try {
    const partition = full();
    const user = partitionUser(ctx, files);
    ensureSlapgridDirs(files, user);
    // partitionLog adds `partition` itself: its parent carries the release only.
    plog = partitionLog(url ? loopCtx.log.child({ software_release: url }) : loopCtx.log, files, id, user.gid);
    const log = plog.log;
    log.info({ partition: id }, 'Processing Computer Partition');
    log.info({ url: url ?? '(none)' }, '  Software URL');
    log.info({ path: softwarePath ?? '(none)' }, '  Software path');
    log.info({ path: files.dir }, '  Instance path');
    log.info({ state: partition.requestedState, reason: decision.reason }, '  Instance status');
    removeFile(files.errorLog);
    const steps = stepsFor(id, partition.requestedState, ctx.forceStop);
    const supervisor = await ctx.supervisor();
    const update = ctx.supervisorUpdate ?? ((l: Logger) => updateSupervisor(supervisor.client, l));
    await runSteps({
      id, partition, files, settings: ctx.settings, link: ctx.link, supervisor: { ...supervisor, update },
      user, softwarePath, forceStop: ctx.forceStop, log, buildoutServer: ctx.buildoutServer,
    }, steps);
    if (decision.writeTimestamp && timestamp !== null) writeTimestamp(files, timestamp);
    writePartitionState(files, { lastSuccess: ctx.now(), anomaly: false });
    log.info({ partition: id }, 'Finished processing');
    return { kind: 'processed', reason: decision.reason };
  } catch (error) {
    if (isMasterDown(error)) throw error;
    const message = error instanceof Error ? error.message : String(error);
    const promise = error instanceof PromiseError;
    const log = plog?.log ?? ctx.log;
    log.error({ code: 'PARTITION_FAILED', partition: id, error: message.split('\n')[0], err: error }, 'processing failed');
    if (error instanceof Error && !(error instanceof BuildoutFailedError) && error.stack) log.debug(error.stack);
    let retryAt: number | undefined;
    try {
      if (!promise) writeFileAtomic(files.errorLog, message, 0o644);
      const backoff = afterFailure(state.backoff, fingerprint, ctx.now(), message, ctx.settings.backoff);
      if (ctx.settings.backoff.baseSeconds > 0) retryAt = backoff.retryAt;
      if (statBeneath(files.dir, relativeTo(files.dir, files.slapgrid))?.isDirectory()) writePartitionState(files, { ...state, backoff });
    } catch (stateError) {
      log.warn({ code: 'FAILURE_NOT_RECORDED', partition: id, err: stateError }, 'could not record the failure');
    }
    await reportError(ctx, id, message);
    return { kind: 'failed', error: message, promise, retryAt };
  } finally {
    plog?.close();
  }
}
