// Effects of destroying one partition (slapgrid.md §5.2, prerm of §5.3). The
// decisions are in destroy-plan.ts; each step here is idempotent, so a run
// interrupted anywhere is finished by the next one.
import { existsSync, lstatSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CgroupTree } from '../cgroup/group.js';
import { launcherPath, native } from '../native/index.js';
import { killUid } from '../cgroup/kill.js';
import { SupervisorClient, SupervisorFault } from '../supervisor/client.js';
import { updateSupervisor } from '../supervisor/groups.js';
import type { Logger } from '../util/log.js';
import { killPoint } from '../util/kill-point.js';
import {
  decideDestruction, isPartitionConf, KEPT_ENTRIES, prermConf, prermGroup, retention, RETENTION_DATE_FILE, RETENTION_DELAY_FILE,
  WAIT_LIST_FILE, type DestructionDecision, type ProcessState,
} from './destroy-plan.js';
import { runAs } from '../executor/index.js';
import type { User } from '../users/user.js';
import { listBeneath, readTextBeneath, removeBeneath, statBeneath, writeBeneath } from '../safe-fs/index.js';

export interface DestroyContext {
  log: Logger;
  /** supervisord's socket and include directory (<instance_root>/etc/supervisord.conf.d). */
  supervisor: { socket: string; includeDir: string };
  certificateRepository?: string | undefined;
  /** Partition cgroups; undefined when cgroups are unusable. */
  cgroups?: CgroupTree | undefined;
  scriptTimeoutMs: number;
  prermWaitMs: number;
  now?: () => number;
}

export interface DestroyTarget {
  id: string;
  path: string;
  user: User;
}

export type DestroyOutcome = Exclude<DestructionDecision['kind'], 'start-prerm'> | 'destroyed';

export class DestroyError extends Error {
  constructor(readonly partition: string, readonly step: string, cause: string) {
    super(`cannot destroy ${partition}: ${step}: ${cause}`);
    this.name = 'DestroyError';
  }
}

/**
 * A node-side file of the partition (safe-fs: no link, no FIFO, capped); null
 * when absent or refused, with the refusal logged (the partition user could
 * have deleted it as well).
 */
export function readPartitionText(target: DestroyTarget, rel: string, log: Logger): string | null {
  try {
    return readTextBeneath(target.path, rel, { maxBytes: 64 * 1024 }) ?? null;
  } catch (error) {
    log.error({ err: error, code: 'PARTITION_UNSAFE', partition: target.id }, 'taken as absent');
    return null;
  }
}

const ignoreFault = (...names: string[]) => (error: unknown) => {
  if (error instanceof SupervisorFault && names.includes(error.faultName)) return undefined;
  throw error;
};

/** Stops and forgets the partition's own program group (not <id>-prerm, which must be able to run). */
async function stopPartition(target: DestroyTarget, ctx: DestroyContext, client: SupervisorClient): Promise<void> {
  const conf = path.join(ctx.supervisor.includeDir, `${target.id}.conf`);
  if (existsSync(conf)) unlinkSync(conf);
  await client.stopProcessGroup(target.id).catch(ignoreFault('BAD_NAME'));
  await updateSupervisor(client, ctx.log);
}

async function processStates(client: SupervisorClient, names: readonly string[]): Promise<Map<string, ProcessState>> {
  const states = new Map<string, ProcessState>();
  for (const name of names) {
    const info = await client.getProcessInfo(name).catch(ignoreFault('BAD_NAME'));
    states.set(name, info ? (info.statename as ProcessState) : 'ABSENT');
  }
  return states;
}

function prermScripts(target: DestroyTarget, log: Logger): string[] {
  let entries;
  try {
    entries = listBeneath(target.path, 'etc/prerm') ?? [];
  } catch (error) {
    log.error({ err: error, code: 'PRERM_DIR_UNREADABLE', partition: target.id }, 'no etc/prerm script run');
    return [];
  }
  return entries.filter((e) => e.type === 'file').map((e) => e.name).sort().filter((name) => {
    if (/^[A-Za-z0-9_.-]+$/.test(name)) return true;
    log.warn({ code: 'PRERM_NAME_INVALID', partition: target.id, script: `etc/prerm/${name}` }, 'prerm script ignored (supervisord program names allow letters, digits, _ . - only)');
    return false;
  });
}

async function startPrerm(target: DestroyTarget, ctx: DestroyContext, client: SupervisorClient, scripts: string[]): Promise<void> {
  const group = prermGroup(target.id);
  writeBeneath(ctx.supervisor.includeDir, `${group}.conf`, prermConf({
    ...target, uid: target.user.uid, gid: target.user.gid, user: target.user.name, home: target.user.home, launcher: launcherPath,
    cgroupProcs: ctx.cgroups?.exists(target.id) ? ctx.cgroups.procsFiles(target.id) : [],
  }, scripts), { mode: 0o600 });
  await updateSupervisor(client, ctx.log);
  const names = scripts.map((s) => `${group}:${s}`);
  for (const name of names) {
    const info = await client.getProcessInfo(name);
    if (info.start === 0) await client.startProcess(name, false).catch(ignoreFault('ALREADY_STARTED'));
  }
  writeWaitList(target, names);
  ctx.log.info({ partition: target.id, scripts }, 'started etc/prerm scripts');
}

/** The prerm programs destruction waits for (a node-side file in the partition, through safe-fs). */
export function writeWaitList(target: DestroyTarget, names: readonly string[]): void {
  writeBeneath(target.path, WAIT_LIST_FILE, `${names.join('\n')}\n`, { mode: 0o644 });
}

export function writeRetentionDate(target: DestroyTarget, until: number): void {
  writeBeneath(target.path, RETENTION_DATE_FILE, String(until), { mode: 0o644 });
}

async function observe(target: DestroyTarget, ctx: DestroyContext, client: SupervisorClient, now: number) {
  const waitText = readPartitionText(target, WAIT_LIST_FILE, ctx.log);
  const waitList = waitText === null ? null : waitText.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return {
    retention: retention(readPartitionText(target, RETENTION_DELAY_FILE, ctx.log), readPartitionText(target, RETENTION_DATE_FILE, ctx.log), now),
    prermScripts: prermScripts(target, ctx.log),
    waitList,
    states: await processStates(client, waitList ?? []),
    hasDestroyScript: hasDestroyScript(target, ctx.log),
  };
}

/**
 * Kills every task of the partition's cgroup (sub-groups included), then,
 * as a last sweep, every process of its user anywhere (pids through pidfds).
 * Throws while any is left: the partition is reported destroyed, and its
 * slot offered again, only when its user has no process left.
 */
export async function killPartitionProcesses(id: string, uid: number, tree: CgroupTree | undefined, log: Logger): Promise<void> {
  if (tree?.exists(id)) {
    const { killed, left } = await tree.kill(id);
    if (killed > 0) log.info({ partition: id, killed }, 'killed process(es) left in its cgroup');
    if (left.length > 0) throw new Error(`process(es) ${left.join(', ')} still in the cgroup after SIGKILL`);
  }
  const sweep = await killUid(uid);
  if (sweep.killed > 0) log.warn({ code: 'PROCESSES_OUTSIDE_CGROUP', partition: id, killed: sweep.killed, uid }, 'killed process(es) of its uid outside its cgroup');
  if (sweep.left.length > 0) throw new Error(`process(es) ${sweep.left.join(', ')} of uid ${uid} still alive after SIGKILL`);
}

/** Removes and re-creates the (empty) partition cgroup with the same limits (counters back to zero). */
async function resetCgroup(id: string, tree: CgroupTree): Promise<void> {
  if (!tree.exists(id)) return;
  await tree.kill(id);
  for (const child of tree.directories(id).flatMap((dir) => listSubGroups(dir))) {
    try { tree.removeChild(id, child); } catch { /* an executor run still ending: removed with the group below or next pass */ }
  }
  const limitFiles = tree.directories(id).flatMap((dir) =>
    ['cpu.weight', 'cpu.max', 'cpu.shares', 'cpu.cfs_period_us', 'cpu.cfs_quota_us', 'memory.max', 'memory.limit_in_bytes', 'pids.max'].map((f) => path.join(dir, f)));
  const values = native().cgroupReadValues(limitFiles);
  tree.remove(id);
  tree.create(id);
  limitFiles.forEach((file, i) => {
    const value = values[i]?.trim();
    if (value === undefined || value === '') return;
    try {
      native().cgroupWrite(file, value);
    } catch { /* a default the kernel refuses to take back (e.g. v1 "unlimited" rounding) stays default */ }
  });
}

/** Names of the sub-groups (executor runs) of a cgroup directory (cgroupfs is root's). */
function listSubGroups(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

function hasDestroyScript(target: DestroyTarget, log: Logger): boolean {
  try {
    return statBeneath(target.path, 'sbin/destroy') !== undefined;
  } catch (error) {
    log.error({ err: error, code: 'DESTROY_SCRIPT_UNSAFE', partition: target.id }, 'sbin/destroy not run');
    return false;
  }
}

/**
 * Empties the partition directory; the directory, its owner and mode stay.
 * Never follows a link out of the partition, never enters another mount
 * (instance_storage_home, data disks): mount points found are left and logged.
 */
export function emptyDirectory(target: DestroyTarget, log: Logger): void {
  const st = lstatSync(target.path);
  if (!st.isDirectory()) throw new Error(`${target.path} is not a directory`);
  for (const { name } of listBeneath(target.path, '') ?? []) {
    if (KEPT_ENTRIES.has(name)) continue;
    const skipped = removeBeneath(target.path, name);
    if (skipped.length > 0) log.warn({ code: 'MOUNT_POINTS_LEFT', partition: target.id, mount_points: skipped }, 'mount points left in place (not crossed)');
  }
}

/**
 * One pass over a destroyed partition whose processes may still run. Returns
 * what happened; 'destroyed' means the caller reports destroyedComputerPartition.
 */
/** The kill point after a step of destroyPartition (src/util/kill-point.ts): "destroy:" and the step's name in kebab case. */
export const destroyKillPoint = (step: string): string => `destroy:${step.replace(/[^a-z]+/gi, '-').replace(/-$/, '').toLowerCase()}`;

/** The step boundaries of a destruction, in order, for the kill hook and docs/design.md. */
export const DESTROY_KILL_POINTS = [
  'stop processes', 'observe', 'start etc/prerm', 'write retention date', 'sbin/destroy', 'reset cgroup', 'remove supervisord files', 'remove certificates', 'empty directory',
].map(destroyKillPoint);

export async function destroyPartition(target: DestroyTarget, ctx: DestroyContext): Promise<DestroyOutcome> {
  const { log } = ctx;
  const now = () => (ctx.now ?? (() => Date.now() / 1000))();
  const client = new SupervisorClient(ctx.supervisor.socket, 30_000);
  const step = async <T>(name: string, fn: () => Promise<T> | T): Promise<T> => {
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      throw new DestroyError(target.id, name, error instanceof Error ? error.message : String(error));
    }
    killPoint(destroyKillPoint(name));
    return result;
  };
  if (!lstatSync(target.path, { throwIfNoEntry: false })?.isDirectory()) throw new DestroyError(target.id, 'partition directory', `${target.path} does not exist`);
  await step('stop processes', () => stopPartition(target, ctx, client));
  let decision = decideDestruction(await step('observe', () => observe(target, ctx, client, now())));
  if (decision.kind === 'start-prerm') {
    await step('start etc/prerm', () => startPrerm(target, ctx, client, (decision as { scripts: string[] }).scripts));
    decision = decideDestruction(await step('observe', () => observe(target, ctx, client, now())));
  }
  const deadline = Date.now() + ctx.prermWaitMs;
  while (decision.kind === 'wait-prerm' && Date.now() < deadline) {
    await sleep(200);
    decision = decideDestruction(await step('observe', () => observe(target, ctx, client, now())));
  }
  if (decision.kind === 'locked') {
    if (decision.writeDate && decision.until !== null) {
      const until = decision.until;
      await step('write retention date', () => writeRetentionDate(target, until));
    }
    log.info({ partition: target.id, ...(decision.until !== null ? { until: new Date(decision.until * 1000).toISOString() } : {}) }, 'Impossible to destroy partition yet because of retention lock.');
    return 'locked';
  }
  if (decision.kind === 'wait-prerm') {
    log.info({ partition: target.id, running: decision.running }, 'waiting for etc/prerm programs; destruction retried on the next run');
    return 'wait-prerm';
  }
  if (decision.kind !== 'destroy') throw new DestroyError(target.id, 'plan', `unexpected decision ${decision.kind}`);
  if (decision.runDestroyScript) {
    const run = await step('sbin/destroy', () => runAs({
      argv: [path.join(target.path, 'sbin', 'destroy')], user: target.user, cwd: target.path, timeoutMs: ctx.scriptTimeoutMs,
      env: { PYTHONNOUSERSITE: 'true' }, maxOutput: 16 * 1024,
      cgroup: ctx.cgroups?.exists(target.id) ? { tree: ctx.cgroups, group: target.id } : undefined,
    }));
    if (run.exitCode !== 0 || run.timedOut) {
      const why = run.timedOut ? 'timed out: process tree killed' : run.spawnError ?? (run.signal ? `killed by ${run.signal}` : `exit ${run.exitCode}`);
      throw new DestroyError(target.id, 'sbin/destroy', `${why}\n${run.output}`);
    }
  }
  await step('kill processes', () => killPartitionProcesses(target.id, target.user.uid, ctx.cgroups, log));
  if (ctx.cgroups) await step('reset cgroup', () => resetCgroup(target.id, ctx.cgroups as CgroupTree));
  await step('remove supervisord files', async () => {
    for (const file of readdirSync(ctx.supervisor.includeDir)) {
      if (isPartitionConf(file, target.id)) unlinkSync(path.join(ctx.supervisor.includeDir, file));
    }
    await updateSupervisor(client, ctx.log);
  });
  await step('remove certificates', () => {
    if (!ctx.certificateRepository) return;
    for (const ext of ['crt', 'key']) rmSync(path.join(ctx.certificateRepository, `${target.id}.${ext}`), { force: true });
  });
  await step('empty directory', () => emptyDirectory(target, log));
  log.info({ partition: target.id, cgroup_reset: ctx.cgroups !== undefined }, 'destroyed (directory emptied, processes stopped)');
  return 'destroyed';
}
