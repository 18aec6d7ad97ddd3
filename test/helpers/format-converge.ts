// Crash convergence of `slapos node format`: a picture of what a run leaves
// (normalised so that two environments compare), the consistency of the user
// database, and random SIGKILLs (seeded) each followed by a plain run. Shared by
// test/format/kill-steps.test.ts, test/format/random-kill.test.ts and
// `npm run bench -- random-kill`.
import { spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import { detectLayout, groupDirectories } from '../../src/cgroup/layout.js';
import { formatCli, formatEnv, removeTestCgroups, removeTestUsers, type FormatEnv } from './format.js';
import { snapshotNode } from './node-snapshot.js';
import { run } from './system.js';

/**
 * A namespace as formatEnv makes it, without duplicate address detection: DAD
 * is no step boundary, and its second of waiting per run would be most of a
 * kill test's time (test/format/format.test.ts runs it).
 */
export function noDadEnv(t: ExecutionContext, keys: Record<string, string>): FormatEnv {
  const env = formatEnv(t, { kind: 'bridge' }, keys);
  run('ip', ['netns', 'exec', env.netns, 'sysctl', '-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.slapif0.accept_dad=0']);
  return env;
}

/** Removes an environment's users, cgroups, namespace and files now rather than at teardown (each round has its own). */
export function dropEnv(env: FormatEnv): void {
  removeTestUsers(env.prefix);
  removeTestCgroups(env.cgroupParent);
  spawnSync('ip', ['netns', 'del', env.netns]);
  rmSync(env.dir, { recursive: true, force: true });
}

/**
 * The node's state (users, groups, files with owner, mode and content, links,
 * addresses, routes, rules, sysctls, cgroups) with this environment's prefix
 * and directory replaced, so that two environments compare. `skip`: a user and
 * file name left out (an administrator's, checked apart).
 */
export async function picture(env: FormatEnv, skip = ''): Promise<string> {
  const state = await snapshotNode(
    { netns: env.netns, dir: env.dir, users: [], groups: [], placeholders: [['@DIR@', env.dir], ['@P@', env.prefix]] },
    (name) => name.startsWith(env.prefix) && name !== skip,
  );
  const files = (state.files as { path: string }[]).filter((f) => skip === '' || path.basename(f.path) !== skip);
  let cgroups: string[] = [];
  try {
    cgroups = groupDirectories(detectLayout(), env.cgroupParent).flatMap((dir) =>
      run('find', [dir, '-mindepth', '1', '-maxdepth', '1', '-type', 'd']).split('\n').filter((l) => l !== '').sort());
  } catch {
    // no cgroup hierarchy on this host: nothing to compare
  }
  return JSON.stringify({ ...state, files, cgroups }, null, 1).split(env.dir).join('@DIR@').split(env.prefix).join('@P@');
}

/** The first lines where two pictures differ, for a message. */
export function firstDifference(got: string, expected: string): string {
  const a = got.split('\n');
  const b = expected.split('\n');
  const i = a.findIndex((line, k) => line !== b[k]);
  const at = i === -1 ? Math.min(a.length, b.length) : i;
  return `line ${at + 1}: got ${JSON.stringify(a.slice(at, at + 3).join(' '))}, expected ${JSON.stringify(b.slice(at, at + 3).join(' '))}`;
}

/**
 * What is wrong with the user database for this environment (empty when
 * nothing): each partition user present with its own group, uid = gid, and no
 * complaint of pwck -r / grpck -r about our names.
 */
export function userDbProblems(env: FormatEnv, partitions: number): string[] {
  const problems: string[] = [];
  for (let i = 0; i < partitions; i++) {
    const name = `${env.prefix}u${i}`;
    const user = spawnSync('getent', ['passwd', name], { encoding: 'utf8' }).stdout.trim().split(':');
    const group = spawnSync('getent', ['group', name], { encoding: 'utf8' }).stdout.trim().split(':');
    if (user.length < 4) problems.push(`user ${name} missing`);
    else if (user[2] !== user[3]) problems.push(`user ${name}: uid ${user[2]} ≠ gid ${user[3]}`);
    if (group.length < 3) problems.push(`group ${name} missing`);
    else if (group[2] !== user[3]) problems.push(`group ${name}: gid ${group[2]}, its user's ${user[3]}`);
  }
  for (const check of ['pwck', 'grpck']) {
    const out = spawnSync(check, ['-r'], { encoding: 'utf8' });
    const ours = `${out.stdout}${out.stderr}`.split('\n').filter((l) => l.includes(env.prefix));
    if (ours.length > 0) problems.push(`${check} -r: ${ours.join('; ')}`);
  }
  return problems;
}

/** A user-database journal left by this environment's killed run (another test's own journal holds our names only for a moment). */
export function ownJournalLeft(env: FormatEnv): boolean {
  try {
    return readFileSync('/etc/.slapos-userdb.journal', 'utf8').includes(env.prefix);
  } catch {
    return false;
  }
}

/** Whether our journal stays: one of another test's commit holds our names for a moment only, so it is waited out. */
export async function ownJournalStays(env: FormatEnv): Promise<boolean> {
  for (let i = 0; i < 50 && ownJournalLeft(env); i++) await sleep(200);
  return ownJournalLeft(env);
}

/** Small seeded generator (mulberry32), so that a failing sequence of kill instants can be run again. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export interface KillRound {
  /** When the SIGKILL was sent: after the start of the run, or after its first apply step began. */
  delayMs: number;
  from: 'start' | 'apply';
  /** False when the run had finished before the kill. */
  killed: boolean;
  /** The killed run left its user-database journal (killed inside that commit). */
  journalLeft: boolean;
  /** Steps the next run still planned (null when its summary could not be read). */
  stepsLeft: number | null;
  /** Empty when the next run converged to the uninterrupted state with a sound user database. */
  problems: string[];
}

/** The debug line format logs as it begins its first step (a fresh node's plan starts with the users step). */
const FIRST_STEP = /users: /;

/**
 * Runs format (verbose, so that each step is logged as it begins) and calls
 * `at(child, 'start' | 'apply')` at its start and when its first step begins.
 */
function watchedFormat(env: FormatEnv, args: string[], at: (child: ChildProcess, phase: 'start' | 'apply') => void) {
  return formatCli(env, ['-v', ...args], {}, [], (child) => {
    at(child, 'start');
    let seen = '';
    const onData = (d: Buffer) => {
      seen += d.toString();
      if (!FIRST_STEP.test(seen)) return;
      child.stderr?.off('data', onData);
      at(child, 'apply');
    };
    child.stderr?.on('data', onData);
  });
}

/**
 * An uninterrupted run (its picture, its duration and that of its apply
 * steps), then `kills` rounds, each in a fresh environment: `node format`
 * SIGKILLed at a random instant, then a plain run, whose result is compared.
 * Three kills in four fall within the apply steps (the part that changes the
 * system, a few hundred milliseconds after a second of start-up and
 * observation), the others anywhere in the run.
 */
export async function randomKills(
  t: ExecutionContext, options: { seed: number; kills: number; partitions: number; round?: (r: KillRound, i: number) => void },
): Promise<{ runMs: number; applyMs: number; planned: number; rounds: KillRound[] }> {
  const keys = { partition_amount: String(options.partitions) };
  const random = seeded(options.seed);
  const whole = noDadEnv(t, keys);
  const started = Date.now();
  let applyStarted = Number.NaN;
  const uninterrupted = await watchedFormat(whole, ['--json'], (_child, phase) => {
    if (phase === 'apply') applyStarted = Date.now();
  });
  const runMs = Date.now() - started;
  const applyMs = Date.now() - applyStarted;
  if (uninterrupted.status !== 2 || Number.isNaN(applyMs)) throw new Error(`uninterrupted run: exit ${uninterrupted.status}: ${uninterrupted.stderr}`); // 2: formatted, no master
  const planned = (JSON.parse(uninterrupted.stdout.trim().split('\n').at(-1) ?? '{}') as { steps?: number }).steps ?? 0;
  const expected = await picture(whole);
  dropEnv(whole);
  const rounds: KillRound[] = [];
  for (let i = 0; i < options.kills; i++) {
    const env = noDadEnv(t, keys);
    const from = random() < 0.75 ? 'apply' : 'start';
    const delayMs = Math.floor(random() * (from === 'apply' ? applyMs : runMs));
    let timer: NodeJS.Timeout | undefined;
    const killedRun = await watchedFormat(env, [], (child, phase) => {
      if (phase === from) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    clearTimeout(timer);
    const journalLeft = ownJournalLeft(env);
    const next = await formatCli(env, ['--json']);
    const problems: string[] = [];
    if (next.status !== 2) problems.push(`the next run exited ${next.status}: ${next.stderr.slice(-2000)}`);
    let stepsLeft: number | null = null;
    try {
      stepsLeft = (JSON.parse(next.stdout.trim().split('\n').at(-1) ?? '') as { steps: number }).steps;
    } catch {
      // reported as the exit status above
    }
    const got = await picture(env);
    if (got !== expected) problems.push(`not the uninterrupted state: ${firstDifference(got, expected)}`);
    problems.push(...userDbProblems(env, options.partitions));
    if (await ownJournalStays(env)) problems.push('a user-database journal of ours is left');
    dropEnv(env);
    const round = { delayMs, from, killed: killedRun.signal === 'SIGKILL', journalLeft, stepsLeft, problems } satisfies KillRound;
    rounds.push(round);
    options.round?.(round, i);
  }
  return { runMs, applyMs, planned, rounds };
}
