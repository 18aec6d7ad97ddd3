// Effects of destroying one partition (slapgrid.md §5.2, prerm of §5.3). The
// decisions are in destroy-plan.ts; each step here is idempotent, so a run
// interrupted anywhere is finished by the next one.
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CgroupTree } from '../cgroup/group.js';
import { native } from '../native/index.js';
import { SupervisorClient, SupervisorFault } from '../supervisor/client.js';
import { updateSupervisor } from '../supervisor/groups.js';
import type { Logger } from '../util/log.js';
import {
  decideDestruction, isPartitionConf, KEPT_ENTRIES, prermConf, prermGroup, retention, RETENTION_DATE_FILE, RETENTION_DELAY_FILE,
  WAIT_LIST_FILE, type DestructionDecision, type ProcessState,
} from './destroy-plan.js';
import { runAsPartitionUser, type PartitionUser } from './run-as.js';

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
  user: PartitionUser;
}

export type DestroyOutcome = Exclude<DestructionDecision['kind'], 'start-prerm'> | 'destroyed';

export class DestroyError extends Error {
  constructor(readonly partition: string, step: string, cause: string) {
    super(`cannot destroy ${partition}: ${step}: ${cause}`);
    this.name = 'DestroyError';
  }
}

const readText = (file: string): string | null => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
};

function writeAtomic(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text, { mode: 0o600 });
  renameSync(`${file}.tmp`, file);
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
  const dir = path.join(target.path, 'etc', 'prerm');
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  return names.filter((name) => {
    if (!lstatSync(path.join(dir, name)).isFile()) return false;
    if (/^[A-Za-z0-9_.-]+$/.test(name)) return true;
    log.warn(`${target.id}: etc/prerm/${name} ignored (supervisord program names allow letters, digits, _ . - only)`);
    return false;
  });
}

async function startPrerm(target: DestroyTarget, ctx: DestroyContext, client: SupervisorClient, scripts: string[]): Promise<void> {
  const group = prermGroup(target.id);
  writeAtomic(path.join(ctx.supervisor.includeDir, `${group}.conf`), prermConf({ ...target, uid: target.user.uid, user: target.user.name, home: target.user.home }, scripts));
  await updateSupervisor(client, ctx.log);
  const names = scripts.map((s) => `${group}:${s}`);
  for (const name of names) {
    const info = await client.getProcessInfo(name);
    if (info.start === 0) await client.startProcess(name, false).catch(ignoreFault('ALREADY_STARTED'));
  }
  writeFileSync(path.join(target.path, WAIT_LIST_FILE), `${names.join('\n')}\n`, { mode: 0o644 });
  ctx.log.info(`${target.id}: started etc/prerm scripts ${scripts.join(', ')}`);
}

async function observe(target: DestroyTarget, ctx: DestroyContext, client: SupervisorClient, now: number) {
  const waitText = readText(path.join(target.path, WAIT_LIST_FILE));
  const waitList = waitText === null ? null : waitText.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  return {
    retention: retention(readText(path.join(target.path, RETENTION_DELAY_FILE)), readText(path.join(target.path, RETENTION_DATE_FILE)), now),
    prermScripts: prermScripts(target, ctx.log),
    waitList,
    states: await processStates(client, waitList ?? []),
    hasDestroyScript: existsSync(path.join(target.path, 'sbin', 'destroy')),
  };
}

/** Kills what is left in the partition's cgroup, then removes and re-creates it with the same limits (counters back to zero). */
async function resetCgroup(id: string, tree: CgroupTree): Promise<void> {
  if (!tree.exists(id)) return;
  for (let i = 0; i < 100; i++) {
    const pids = tree.processes(id);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    await sleep(20);
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

/** Empties the partition directory; the directory, its owner and mode stay. */
function emptyDirectory(target: DestroyTarget): void {
  const st = lstatSync(target.path);
  if (!st.isDirectory()) throw new Error(`${target.path} is not a directory`);
  for (const name of readdirSync(target.path)) {
    if (KEPT_ENTRIES.has(name)) continue;
    rmSync(path.join(target.path, name), { recursive: true, force: true }); // rm never follows symlinks
  }
}

/**
 * One pass over a destroyed partition whose processes may still run. Returns
 * what happened; 'destroyed' means the caller reports destroyedComputerPartition.
 */
export async function destroyPartition(target: DestroyTarget, ctx: DestroyContext): Promise<DestroyOutcome> {
  const { log } = ctx;
  const now = () => (ctx.now ?? (() => Date.now() / 1000))();
  const client = new SupervisorClient(ctx.supervisor.socket, 30_000);
  const step = async <T>(name: string, fn: () => Promise<T> | T): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw new DestroyError(target.id, name, error instanceof Error ? error.message : String(error));
    }
  };
  if (!statSync(target.path, { throwIfNoEntry: false })?.isDirectory()) throw new DestroyError(target.id, 'partition directory', `${target.path} does not exist`);
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
    if (decision.writeDate && decision.until !== null) writeAtomic(path.join(target.path, RETENTION_DATE_FILE), String(decision.until));
    log.info(`${target.id}: Impossible to destroy partition yet because of retention lock${decision.until !== null ? ` (until ${new Date(decision.until * 1000).toISOString()})` : ''}.`);
    return 'locked';
  }
  if (decision.kind === 'wait-prerm') {
    log.info(`${target.id}: waiting for etc/prerm programs ${decision.running.join(', ')}; destruction retried on the next run`);
    return 'wait-prerm';
  }
  if (decision.kind !== 'destroy') throw new DestroyError(target.id, 'plan', `unexpected decision ${decision.kind}`);
  if (decision.runDestroyScript) {
    const run = await step('sbin/destroy', () => runAsPartitionUser(path.join(target.path, 'sbin', 'destroy'), [], { cwd: target.path, user: target.user, timeoutMs: ctx.scriptTimeoutMs }));
    if (!run.ok) throw new DestroyError(target.id, 'sbin/destroy', `${run.timedOut ? 'timed out' : `exit ${run.exitCode}`}\n${run.output}`);
  }
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
  await step('empty directory', () => emptyDirectory(target));
  log.info(`${target.id}: destroyed (directory emptied, processes stopped${ctx.cgroups ? ', cgroup reset' : '; cgroup not reset: cgroups unusable'})`);
  return 'destroyed';
}
