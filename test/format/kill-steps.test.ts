// format's apply steps killed at every step boundary in turn
// (SLAPOS_FORMAT_TEST_KILL_AFTER=n; the killed run says which boundary it
// reached, so each is walked once whatever the batching): each time, an
// administrator changes something, the next plain run — also when its plan is
// empty — must end in the same state as one uninterrupted run (users, groups,
// directories with owner and mode, taps and bridge membership, addresses,
// routes, sysctls, cgroups, the state files), keep the administrator's change,
// and leave a user database that pwck/grpck accept. Each boundary starts from
// a fresh namespace and prefix (cheap) so that they all start from nothing;
// two partitions keep the plan short. The users step's own boundaries are in
// test/safe-fs/userdb-journal.test.ts.
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { dryRunSteps, formatCli, type FormatEnv } from '../helpers/format.js';
import { dropEnv, noDadEnv, ownJournalStays, picture, userDbProblems } from '../helpers/format-converge.js';
import { isRoot, run } from '../helpers/system.js';

const rootOnly = isRoot ? test.serial : test.skip;
const KEYS = { partition_amount: '2' };

/** Partition users as format makes them, and shadow's checkers accept ours. */
function assertConsistent(t: ExecutionContext, env: FormatEnv, what: string): void {
  t.deepEqual(userDbProblems(env, 2), [], what);
}

/**
 * What an administrator does between the killed run and the next: a user added
 * by useradd, and a file in the deepest directory format made so far.
 */
function adminChange(env: FormatEnv): { name: string; check: (t: ExecutionContext, what: string) => void } {
  const name = `${env.prefix}adm`;
  run('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', name]);
  const passwdLine = run('getent', ['passwd', name]).trim();
  const dir = [path.join(env.dir, 'inst', `${env.prefix}p0`), path.join(env.dir, 'inst'), env.dir].find((d) => existsSync(d)) as string;
  const file = path.join(dir, name);
  writeFileSync(file, 'kept\n');
  return {
    name,
    check: (t, what) => {
      t.is(spawnSync('getent', ['passwd', name], { encoding: 'utf8' }).stdout.trim(), passwdLine, `${what}: useradd's user kept`);
      t.is(readFileSync(file, 'utf8'), 'kept\n', `${what}: the administrator's file kept`);
      unlinkSync(file);
    },
  };
}

rootOnly('format killed after each apply step in turn: the next run converges to the uninterrupted state, also with an empty plan, keeping what an administrator changed', async (t) => {
  t.timeout(600_000);
  const whole = noDadEnv(t, KEYS);
  const planned = dryRunSteps(await formatCli(whole, ['--dry-run', '--json'])).length;
  const uninterrupted = await formatCli(whole, []);
  t.is(uninterrupted.status, 2, uninterrupted.stderr); // formatted; no master listens
  const expected = await picture(whole);
  assertConsistent(t, whole, 'uninterrupted');
  dropEnv(whole);

  // Boundaries run a few at a time, each in its own namespace. KILL_AFTER=n
  // inside a batch of file writes stops after the batch: that boundary is run
  // by its own n, so such an n only counts as inside a batch.
  const reached: number[] = [];
  const insideBatch: number[] = [];
  let emptyNextPlans = 0;
  let next = 1;
  const boundary = async (n: number) => {
    const env = noDadEnv(t, KEYS);
    const started = Date.now();
    const killed = await formatCli(env, [], { SLAPOS_FORMAT_TEST_KILL_AFTER: String(n) });
    t.is(killed.signal, 'SIGKILL', `kill after ${n}: ${killed.stderr}`);
    const [, at, of] = /format killed after step (\d+) of (\d+)/.exec(killed.stderr)?.map(Number) ?? [];
    if (at !== n || of !== planned) {
      t.true(at !== undefined && at > n && of === planned, `kill after ${n}: ${killed.stderr}`);
      insideBatch.push(n);
      dropEnv(env);
      return;
    }
    const what = `killed after step ${at} of ${planned}`;
    reached.push(at);
    const admin = adminChange(env);
    const resumed = await formatCli(env, ['--json']);
    t.is(resumed.status, 2, `${what}: ${resumed.stderr}`);
    const summary = JSON.parse(resumed.stdout.trim().split('\n').at(-1) ?? '{}') as { steps?: number };
    if (summary.steps === 0) emptyNextPlans++;
    admin.check(t, what);
    t.is(await picture(env, admin.name), expected, what);
    assertConsistent(t, env, what);
    t.false(await ownJournalStays(env), `${what}: no user-database journal of ours left`);
    dropEnv(env);
    t.log(`${what}: ${summary.steps} step(s) left, converged (${Date.now() - started} ms)`);
  };
  const worker = async () => {
    for (let n = next++; n <= planned; n = next++) await boundary(n);
  };
  await Promise.all([worker(), worker(), worker()]);
  reached.sort((a, b) => a - b);
  t.log(`${reached.length} boundaries of ${planned} steps (${insideBatch.join(' ') || 'none'} inside a batch); ${emptyNextPlans} next run(s) had an empty plan`);
  t.deepEqual([...reached, ...insideBatch].sort((a, b) => a - b), Array.from({ length: planned }, (_, i) => i + 1), 'every boundary, up to the last (after the state files)');
  t.true(emptyNextPlans >= 1, 'a next run with nothing left to plan converged too');
});
