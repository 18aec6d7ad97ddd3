// `slapos node report` (slapgrid.md §5): report scripts, report files and
// finished sample periods go into the store's outbox; the outbox is sent with
// useComputer, oldest first, each journal marked only once the master
// acknowledged it; then partitions in state destroyed are destroyed.
import { CgroupTree } from '../cgroup/group.js';
import { detectLayout } from '../cgroup/layout.js';
import type { SlapClient } from '../slap/client.js';
import { MasterUnreachableError, SlapHttpError, SlapNotFoundError } from '../slap/errors.js';
import type { Computer } from '../slap/shapes.js';
import type { SupervisordConfigOptions } from '../supervisor/config.js';
import type { Managers } from '../managers/index.js';
import { ensureSupervisord } from '../supervisor/daemon.js';
import { parsePasswd } from '../users/user.js';
import type { Logger } from '../util/log.js';
import { killPoint } from '../util/kill-point.js';
import { readFileSync } from 'node:fs';
import { finishedPeriods, periodJournal, periodUsage } from './aggregate.js';
import { destroyPartition, type DestroyContext } from './destroy.js';
import { ingestReportFiles, runReportScripts } from './ingest.js';
import { discoverPartitions, type LocalPartition } from './partitions.js';
import type { User } from '../users/user.js';
import type { AccountingSettings } from './settings.js';
import { storePath, UsageStore } from './store.js';
import { validateJournal } from './tioxml.js';
import { sendPromiseResults } from './promise-report.js';
import { sendHardwareStatus, type HardwareReportOutcome } from './hardware-report.js';

/** A period is aggregated this long after its end, so a collect run that started before the end has stored its samples. */
export const PERIOD_GRACE_SECONDS = 120;

export interface ReportOptions {
  settings: AccountingSettings;
  client: SlapClient;
  log: Logger;
  now?: () => number;
  /** Test hooks: the cgroup tree and supervisord (defaults: detectLayout, ensureSupervisord). */
  cgroups?: CgroupTree | null;
  supervisor?: { socket: string; includeDir: string };
  /**
   * The node's watchdog (watchdogOptions of slapos.cfg): supervisord.conf is
   * rewritten with it, so the reloads of a destruction keep the watchdog.
   */
  watchdog?: SupervisordConfigOptions;
  /** Undone for each destroyed partition (docs/managers.md); undefined when none is configured. */
  managers?: Managers | undefined;
}

export interface ReportSummary {
  scriptFailures: Array<{ partition: string; scripts: string[] }>;
  ingested: { partitionFiles: number; computerFiles: number; invalid: string[] };
  periodsQueued: number;
  sent: number;
  pending: number;
  rejected: number;
  masterError: string | null;
  destroyed: string[];
  locked: string[];
  waiting: string[];
  destroyFailures: Array<{ partition: string; error: string }>;
  /** Partitions whose promise results the master took (0 with a master that does not take them). */
  promisesSent: number;
  /** The hardware status collect last wrote: sent, none written yet, not taken by the master (not ours), or failed (logged). */
  hardware: HardwareReportOutcome | null;
}

/** Aggregates every finished period holding pending samples into the outbox. */
export function queueFinishedPeriods(store: UsageStore, computerId: string, period: number, now: number): number {
  let queued = 0;
  for (const [start, end] of finishedPeriods(store.pendingTimes(), now, period, PERIOD_GRACE_SECONDS)) {
    const { samples, baselines } = store.periodSamples(start, end);
    const journal = periodJournal(computerId, start, end, periodUsage(samples, baselines));
    if (journal !== null) validateJournal(journal); // ours must always pass; a failure is a bug, not data to send
    store.queuePeriod(start, end, journal, now);
    killPoint('outbox:period-queued');
    if (journal !== null) queued += 1;
  }
  return queued;
}

/**
 * The step boundaries of the usage store's outbox, for the kill hook
 * (src/util/kill-point.ts) and docs/design.md: report files queued (one
 * transaction with their hashes), then deleted; a computer journal queued; a
 * period queued; a journal acknowledged by the master, then marked sent.
 */
export const OUTBOX_KILL_POINTS = ['outbox:files-queued', 'outbox:files-removed', 'outbox:computer-file-queued', 'outbox:period-queued', 'outbox:sent', 'outbox:marked'];

/** Sends pending journals oldest first; stops at the first transport or server error (kept for the next run). */
export async function sendOutbox(store: UsageStore, client: SlapClient, computerId: string, log: Logger, now: number): Promise<{ sent: number; error: string | null }> {
  let sent = 0;
  for (const row of store.pending()) {
    try {
      await client.useComputer(computerId, row.document, row.reportId);
      killPoint('outbox:sent');
      store.markSent(row.id, now);
      killPoint('outbox:marked');
      sent += 1;
    } catch (error) {
      const refused = (error instanceof SlapHttpError || error instanceof SlapNotFoundError) && error.status >= 400 && error.status < 500 && error.status !== 408 && error.status !== 429;
      if (refused) {
        log.error({ err: error, code: 'USAGE_REPORT_REFUSED', report_id: row.id, kind: row.kind }, 'the master refused a usage report; kept in the store, not resent');
        store.markRejected(row.id, (error as Error).message);
        continue;
      }
      return { sent, error: (error as Error).message };
    }
  }
  return { sent, error: null };
}

function userOf(p: LocalPartition, homes: Map<string, string>): User | null {
  if (p.uid === null || p.gid === null) return null;
  return { name: p.user, uid: p.uid, gid: p.gid, home: homes.get(p.user) ?? p.path };
}

export async function runReport(options: ReportOptions): Promise<{ exitCode: number; summary: ReportSummary }> {
  const { settings, client, log } = options;
  const now = () => Math.floor((options.now ?? (() => Date.now() / 1000))());
  const summary: ReportSummary = {
    scriptFailures: [], ingested: { partitionFiles: 0, computerFiles: 0, invalid: [] }, periodsQueued: 0, sent: 0, pending: 0,
    rejected: 0, masterError: null, destroyed: [], locked: [], waiting: [], destroyFailures: [], promisesSent: 0, hardware: null,
  };
  const local = await discoverPartitions(settings, (m) => log.warn(m));
  const byId = new Map(local.map((p) => [p.id, p]));
  const homes = new Map(parsePasswd(readFileSync('/etc/passwd', 'utf8')).map((e) => [e.name, e.home]));
  let computer: Computer | null = null;
  try {
    computer = await client.getFullComputerInformation(settings.computerId);
  } catch (error) {
    summary.masterError = (error as Error).message;
    log.error({ code: 'MASTER_UNREACHABLE', master_error: summary.masterError }, 'cannot get the partitions from the master; reports are kept for the next run');
  }
  const failedScripts = new Set<string>();
  for (const partition of computer?.partitions ?? []) {
    const p = byId.get(partition.partitionId);
    if (!partition.softwareRelease || !p) continue;
    const plog = log.child({ partition: p.id, software_release: partition.softwareRelease.url });
    const user = userOf(p, homes);
    if (!user) { plog.warn({ code: 'PARTITION_USER_UNKNOWN', partition: p.id, user: p.user }, 'partition user unknown; report scripts not run'); continue; }
    const failed = await runReportScripts({ id: p.id, path: p.path, user }, settings.collect.report_script_timeout * 1000, plog, settings.cgroupParent);
    if (failed.length === 0) continue;
    failedScripts.add(p.id);
    summary.scriptFailures.push({ partition: p.id, scripts: failed });
    await client.softwareInstanceError(settings.computerId, p.id, failed.map((name) => `Script '${name}' failed.`).join('\n'))
      .catch((error: Error) => plog.warn({ err: error, code: 'MASTER_REPORT_FAILED', partition: p.id }, 'cannot report the script failure'));
  }

  const store = new UsageStore(storePath(settings.instanceRoot));
  try {
    summary.ingested = ingestReportFiles(store, { instanceRoot: settings.instanceRoot, computerId: settings.computerId, partitions: local, log, now: now() });
    summary.periodsQueued = queueFinishedPeriods(store, settings.computerId, settings.collect.report_period, now());
    if (computer !== null) {
      const result = await sendOutbox(store, client, settings.computerId, log, now());
      summary.sent = result.sent;
      if (result.error) {
        summary.masterError = result.error;
        log.error({ code: 'USAGE_REPORT_UNACKNOWLEDGED', master_error: result.error }, 'usage reports not acknowledged, kept for the next run');
      }
    }
    if (computer !== null) {
      const allocated = new Set(computer.partitions.filter((p) => p.softwareRelease).map((p) => p.partitionId));
      const promises = await sendPromiseResults(client, settings.computerId, settings.instanceRoot, settings.naming.partitionBaseName, allocated, log, now());
      summary.promisesSent = promises.sent;
      summary.hardware = promises.unsupported ? 'unsupported' : await sendHardwareStatus(client, settings.computerId, settings.hardwareStatusFile, log);
    }
    const counts = store.outboxCounts();
    summary.pending = counts.pending;
    summary.rejected = counts.rejected;
    store.prune(now(), settings.retentionDays);
  } finally {
    store.close();
  }

  const destroyed = (computer?.partitions ?? []).filter((p) => p.requestedState === 'destroyed' && p.softwareRelease && byId.has(p.partitionId));
  if (destroyed.length > 0) await destroyPass(options, destroyed.map((p) => byId.get(p.partitionId) as LocalPartition), failedScripts, homes, summary);

  const failed = summary.scriptFailures.length > 0 || summary.destroyFailures.length > 0 || summary.masterError !== null;
  log.info({ sent: summary.sent, pending: summary.pending, destroyed: summary.destroyed.length,
    ...(summary.locked.length ? { locked: summary.locked.length } : {}), ...(summary.waiting.length ? { waiting_prerm: summary.waiting.length } : {}),
    ...(summary.promisesSent ? { promise_results_sent: summary.promisesSent } : {}), ...(summary.hardware === 'sent' ? { hardware_status_sent: true } : {}) }, 'report');
  if (summary.sent === 0 && summary.pending === 0 && summary.masterError === null) {
    // A newcomer's first run: nothing is wrong, the first period is not over yet.
    log.info({ report_period: settings.collect.report_period }, 'usage goes out once a report period ([collect] report_period, in seconds) has ended and `slapos node collect` sampled it');
  }
  return { exitCode: failed ? 1 : 0, summary };
}

async function destroyPass(
  options: ReportOptions, partitions: LocalPartition[], failedScripts: ReadonlySet<string>, homes: Map<string, string>, summary: ReportSummary,
): Promise<void> {
  const { settings, client, log } = options;
  let cgroups: CgroupTree | undefined;
  if (options.cgroups !== undefined) cgroups = options.cgroups ?? undefined;
  else {
    try {
      cgroups = new CgroupTree(detectLayout(), settings.cgroupParent);
    } catch (error) {
      log.warn({ err: error, code: 'CGROUPS_UNUSABLE' }, 'cgroups unusable, partition counters are not reset at destruction');
    }
  }
  const supervisor = options.supervisor ?? (await ensureSupervisord(settings.instanceRoot, { log, ...options.watchdog })).paths;
  const ctx: DestroyContext = {
    log, supervisor, certificateRepository: settings.certificateRepository, cgroups,
    scriptTimeoutMs: settings.collect.report_script_timeout * 1000, prermWaitMs: settings.collect.prerm_wait * 1000,
    ...(options.now ? { now: options.now } : {}),
  };
  for (const p of partitions) {
    const plog = log.child({ partition: p.id });
    if (failedScripts.has(p.id)) { plog.warn({ code: 'REPORT_SCRIPT_FAILED', partition: p.id }, 'not destroyed in this run, its report scripts failed'); continue; }
    const user = userOf(p, homes);
    try {
      if (!user) throw new Error(`user ${p.user} unknown`);
      await client.stoppedComputerPartition(settings.computerId, p.id).catch((error: Error) => plog.warn({ err: error, code: 'MASTER_REPORT_FAILED', partition: p.id }, 'stopped not reported'));
      const outcome = await destroyPartition({ id: p.id, path: p.path, user }, { ...ctx, log: plog });
      if (outcome === 'locked') summary.locked.push(p.id);
      else if (outcome === 'wait-prerm') summary.waiting.push(p.id);
      else {
        // Rules, devices, CPUs and pool resources go with the partition (the reference's report hook).
        if (options.managers) await options.managers.destroy(p.id, plog);
        try {
          await client.destroyedComputerPartition(settings.computerId, p.id);
        } catch (error) {
          // The reference ignores NotFound/ServerError; the next run reports again (the steps are idempotent).
          if (error instanceof MasterUnreachableError) throw error;
          plog.warn({ err: error, code: 'MASTER_REPORT_FAILED', partition: p.id }, 'destroyed not acknowledged');
        }
        summary.destroyed.push(p.id);
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      plog.error({ err: error, code: 'DESTROY_FAILED', partition: p.id }, 'destruction failed');
      summary.destroyFailures.push({ partition: p.id, error: message });
      await client.softwareInstanceError(settings.computerId, p.id, message).catch(() => undefined);
    }
  }
}

