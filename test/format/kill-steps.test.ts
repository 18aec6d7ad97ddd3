// format's apply steps: killed after a step (SLAPOS_FORMAT_TEST_KILL_AFTER=n),
// the next plain run converges: its dry run then plans nothing, and the
// partition user is whole (uid = gid, its group, no journal left). Each run
// in a namespace costs seconds, so the boundaries tested are four of those
// between two kinds of step (users → directories → taps → links → addresses
// → …), spread over the plan; the users step's own boundaries are covered in
// test/safe-fs/userdb-journal.test.ts. Not every boundary: docs/design.md, left.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { dryRunSteps, formatCli, formatEnv } from '../helpers/format.js';
import { isRoot, run } from '../helpers/system.js';

const rootOnly = isRoot ? test.serial : test.skip;

rootOnly('killed between kinds of apply steps of format: the next run converges and then plans nothing', async (t) => {
  const keys = { partition_amount: '1' };
  const steps = dryRunSteps(await formatCli(formatEnv(t, { kind: 'bridge' }, keys), ['--dry-run', '--json']));
  const kindChanges = steps.flatMap((step, i) => (i + 1 < steps.length && steps[i + 1]?.kind !== step.kind ? [i + 1] : []));
  t.true(kindChanges.length > 5, steps.map((s) => s.kind).join(' '));
  // Four of them, spread over the plan (each costs three runs of a few seconds on a loaded 2-core machine).
  const boundaries = [...new Set([0, 1, 2, 3].map((k) => kindChanges[Math.round((k * (kindChanges.length - 1)) / 3)] as number))];
  for (const n of boundaries) {
    const env = formatEnv(t, { kind: 'bridge' }, keys);
    const killed = await formatCli(env, [], { SLAPOS_FORMAT_TEST_KILL_AFTER: String(n) });
    t.is(killed.signal, 'SIGKILL', `after step ${n}: ${killed.stderr}`);
    const next = await formatCli(env, []);
    t.is(next.status, 2, `after step ${n}: ${next.stderr}`); // formatted; no master listens
    t.deepEqual(dryRunSteps(await formatCli(env, ['--dry-run', '--json'])), [], `after step ${n}: converged`);
    const [, , uid, gid] = run('getent', ['passwd', `${env.prefix}u0`]).trim().split(':');
    t.is(uid, gid, `after step ${n}`);
    t.is(run('getent', ['group', `${env.prefix}u0`]).split(':')[2], gid);
    // Another test's format may be committing at this instant: its journal holds a copy of the whole
    // user database (our users included) for a moment. One left behind by our killed run stays.
    const oursLeft = () => {
      try { return readFileSync('/etc/.slapos-userdb.journal', 'utf8').includes(env.prefix); } catch { return false; }
    };
    for (let i = 0; i < 50 && oursLeft(); i++) await new Promise((resolve) => setTimeout(resolve, 200));
    t.false(oursLeft(), `after step ${n}: no journal of ours`);
  }
});
