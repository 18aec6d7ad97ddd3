// Acceptance by random kills: `node format` SIGKILLed at random instants of
// its run (seeded: SLAPOS_TEST_SEED=<seed> runs a failing sequence again),
// each followed by a plain run that must end in the uninterrupted run's state
// with a sound user database (test/helpers/format-converge.ts). Five kills
// here; `npm run bench -- random-kill` runs many (docs/design.md).
import test from 'ava';
import { randomKills } from '../helpers/format-converge.js';
import { isRoot } from '../helpers/system.js';

const rootOnly = isRoot ? test.serial : test.skip;

rootOnly('format SIGKILLed at random instants: each next run converges to the uninterrupted state, user database sound', async (t) => {
  t.timeout(300_000);
  const seed = Number(process.env['SLAPOS_TEST_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
  t.log(`seed ${seed} (SLAPOS_TEST_SEED=${seed} runs these instants again)`);
  const { runMs, applyMs, planned, rounds } = await randomKills(t, {
    seed, kills: 5, partitions: 2,
    round: (r, i) => t.log(`kill ${i + 1} ${r.delayMs} ms after its ${r.from}: ${r.killed ? 'killed' : 'had finished'}${r.journalLeft ? ', inside the user-database commit' : ''}; next run planned ${r.stepsLeft} step(s)`),
  });
  t.log(`uninterrupted run: ${runMs} ms, of which ${applyMs} ms from its first step; ${planned} steps`);
  for (const [i, r] of rounds.entries()) t.deepEqual(r.problems, [], `seed ${seed}, kill ${i + 1} at ${r.delayMs} ms`);
  t.is(rounds.length, 5);
});
