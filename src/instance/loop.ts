// `slapos node instance`: the partitions from the master, strictly one after
// the other in one process (slapgrid.md §4.1), the summary and the exit
// status; offline mode when the master cannot be reached (§4.9).
import { Exit } from '../util/exit-status.js';
import { parseOnlyCp, unknownPartitions } from '../partition/decide.js';
import path from 'node:path';
import { digestPartition, readDigestCache, writeDigestCache, type PartitionDigest } from './digest.js';
import type { SupervisorClient } from '../supervisor/client.js';
import type { Logger } from '../util/log.js';
import { isMasterDown, type InstanceMasterLink } from './master-link.js';
import { processPartition, type Outcome, type RunContext } from './partition.js';
import type { InstanceSettings } from './settings.js';
import type { Managers } from '../managers/index.js';
import { runManagers } from './managers-hook.js';
import { runBatched } from './batch.js';
import { updateSupervisor } from '../supervisor/groups.js';
import { BuildoutForkServer } from '../executor/fork-server.js';

/**
 * Partitions per supervisord update at most: bounds how long a partition's
 * services wait after its buildout, and the partition logs open meanwhile.
 */
export const SUPERVISOR_BATCH = 50;

export interface InstanceLoopOptions {
  /** Terminal progress of the pass: partitions done out of total, and the one in hand. */
  progress?: { update(done: number, total: number, current?: string): void; end(): void };
  settings: InstanceSettings;
  link: InstanceMasterLink;
  supervisor(): Promise<{ client: SupervisorClient; includeDir: string }>;
  develop: boolean;
  forceStop: boolean;
  onlyCp: string | undefined;
  log: Logger;
  now?: () => number;
  /** Partitions per batched supervisord update (default SUPERVISOR_BATCH; 1 = one update per partition). */
  batchSize?: number;
  /** manager_list / [firewall] / pools (docs/managers.md); undefined when none is configured. */
  managers?: Managers | undefined;
}

export interface FailedPartition {
  id: string;
  softwareType: string;
  error: string;
  /** ISO time of the next try (backoff), when there is one. */
  retryAt?: string;
  /** true: not tried in this run (still backing off from an earlier failure). */
  backingOff?: boolean;
}

export interface InstanceSummary {
  offline: boolean;
  processed: string[];
  upToDate: string[];
  free: string[];
  filtered: string[];
  missing: { id: string; error: string }[];
  failed: FailedPartition[];
  promiseFailed: FailedPartition[];
  /** In-process time of the loop, ms (benchmarks). */
  ms: number;
}

export class UnknownPartitionError extends Error {
  override name = 'UnknownPartitionError';
}

function emptySummary(): InstanceSummary {
  return { offline: false, processed: [], upToDate: [], free: [], filtered: [], missing: [], failed: [], promiseFailed: [], ms: 0 };
}

function record(summary: InstanceSummary, p: PartitionDigest, outcome: Outcome): void {
  const id = p.id;
  switch (outcome.kind) {
    case 'missing': summary.missing.push({ id, error: outcome.error }); break;
    case 'free': summary.free.push(id); break;
    case 'up-to-date': summary.upToDate.push(id); break;
    case 'processed': summary.processed.push(id); break;
    case 'backoff':
      summary.failed.push({ id, softwareType: p.softwareType, error: outcome.error, retryAt: new Date(outcome.retryAt).toISOString(), backingOff: true });
      break;
    case 'failed': {
      const entry: FailedPartition = { id, softwareType: p.softwareType, error: outcome.error };
      if (outcome.retryAt !== undefined) entry.retryAt = new Date(outcome.retryAt).toISOString();
      (outcome.promise ? summary.promiseFailed : summary.failed).push(entry);
      break;
    }
  }
}

/** The reference's closing lines (§4.1 step 5). */
export function summaryLines(summary: InstanceSummary): string[] {
  const lines = ['Finished computer partitions.', '='.repeat(80)];
  const line = (f: FailedPartition) =>
    `  ${f.id}[${f.softwareType}]: ${f.error.split('\n')[0]}${f.backingOff ? ` (not retried before ${f.retryAt})` : f.retryAt ? ` (next try after ${f.retryAt})` : ''}`;
  if (summary.failed.length > 0) lines.push('Error while processing the following partitions:', ...summary.failed.map(line));
  if (summary.promiseFailed.length > 0) lines.push('Error with promises for the following partitions:', ...summary.promiseFailed.map(line));
  return lines;
}

export function exitStatus(summary: InstanceSummary): number {
  if (summary.failed.length > 0) return Exit.FAILURE;
  if (summary.promiseFailed.length > 0) return Exit.OFFLINE_OR_PROMISE;
  return Exit.SUCCESS;
}

/** Master unreachable: start every process supervisord knows (§4.9); 3, or 1 when that fails. */
async function offline(options: InstanceLoopOptions, cause: unknown): Promise<{ exitCode: number; summary: InstanceSummary }> {
  const { log } = options;
  const summary = { ...emptySummary(), offline: true };
  log.warn({ code: 'MASTER_UNREACHABLE', err: cause }, 'master unreachable; starting every known process (offline mode)');
  try {
    const { client } = await options.supervisor();
    await client.startAllProcesses(false);
    return { exitCode: Exit.OFFLINE_SUCCESS, summary };
  } catch (error) {
    log.error({ code: 'OFFLINE_START_FAILED', err: error }, 'offline mode: could not start the processes');
    return { exitCode: Exit.FAILURE, summary };
  }
}

export async function processInstances(options: InstanceLoopOptions): Promise<{ exitCode: number; summary: InstanceSummary }> {
  const started = performance.now();
  const summary = emptySummary();
  const onlyCp = parseOnlyCp(options.onlyCp);
  const ctx: RunContext = {
    settings: options.settings, link: options.link, supervisor: options.supervisor, develop: options.develop,
    forceStop: options.forceStop, log: options.log, now: options.now ?? Date.now, cache: { periodicity: new Map() },
    // Started at the first buildout of the pass, ended with it.
    buildoutServer: options.settings.buildoutForkServer !== false ? new BuildoutForkServer(options.log) : undefined,
  };
  let fetched;
  try {
    fetched = await options.link.partitions();
  } catch (error) {
    if (isMasterDown(error)) return offline(options, error);
    throw error;
  }
  options.log.debug({ duration_ms: Math.round(performance.now() - started) }, 'master answered');
  // An answer identical to the last one is not decoded again (digest.ts).
  const cacheFile = path.join(options.settings.instanceRoot, 'var', 'instance-partitions.json');
  let partitions = readDigestCache(cacheFile, fetched.hash);
  if (!partitions) {
    partitions = fetched.decode().map(digestPartition);
    try {
      writeDigestCache(cacheFile, fetched.hash, partitions);
    } catch (error) {
      options.log.debug({ path: cacheFile, err: error }, 'cannot write the digest cache');
    }
  }
  const byId = () => new Map(fetched.decode().map((p) => [p.partitionId, p]));
  let full: ReturnType<typeof byId> | undefined;
  const fullPartition = (id: string) => {
    full ??= byId();
    const found = full.get(id);
    if (!found) throw new Error(`partition ${id} vanished from the master's answer`);
    return found;
  };
  const unknown = unknownPartitions(onlyCp, partitions.map((p) => p.id));
  if (unknown) throw new UnknownPartitionError(unknown);
  const selected = onlyCp ? new Set(onlyCp) : undefined;
  const total = selected ? partitions.filter((p) => selected.has(p.id)).length : partitions.length;
  let done = 0;
  // Partitions whose group file changed wait at their supervisord update while the next
  // ones run up to theirs: one update applies them all (batch.ts).
  const flush = async () => {
    const { client } = await options.supervisor();
    const t = performance.now();
    await updateSupervisor(client, options.log);
    options.log.debug({ duration_ms: Math.round(performance.now() - t) }, 'supervisord updated');
  };
  try {
    await runBatched(partitions, async (partition, barrier) => {
      if (selected && !selected.has(partition.id)) {
        summary.filtered.push(partition.id);
        return;
      }
      options.progress?.update(done, total, partition.id);
      const outcome = await processPartition({ ...ctx, supervisorUpdate: () => barrier() }, partition, () => fullPartition(partition.id), selected !== undefined);
      record(summary, partition, outcome);
      options.progress?.update(++done, total);
      if (options.managers && partition.requestedState !== 'destroyed' && ['processed', 'failed', 'up-to-date'].includes(outcome.kind)) {
        await runManagers(options.managers, options.settings.instanceRoot, partition.id, () => fullPartition(partition.id), options.log);
      }
    }, flush, options.batchSize ?? SUPERVISOR_BATCH);
  } catch (error) {
    if (isMasterDown(error)) return offline(options, error);
    throw error;
  } finally {
    options.progress?.end();
    await ctx.buildoutServer?.close();
  }
  summary.ms = Math.round(performance.now() - started);
  for (const line of summaryLines(summary)) options.log.info(line);
  return { exitCode: exitStatus(summary), summary };
}
