// `npm run bench -- random-kill [--kills N] [--seed S] [--partitions P]`:
// SIGKILLs `node format` at N random instants (seeded; three in four within
// its apply steps), each followed by a plain run that must converge to the
// uninterrupted run's state with a sound user database (pwck/grpck, uid = gid,
// no journal left): test/helpers/format-converge.ts, also run (5 kills) by
// test/format/random-kill.test.ts. Prints each failure and a summary for
// docs/design.md.
import { randomKills } from '../test/helpers/format-converge.js';
import { fakeContext, header, parseArgs } from './lib.js';

export async function main(args: string[]): Promise<void> {
  const { opts } = parseArgs(args);
  const kills = Number(opts.get('kills') ?? 50);
  const partitions = Number(opts.get('partitions') ?? 2);
  const seed = Number(opts.get('seed') ?? Math.floor(Math.random() * 2 ** 31));
  header(`slapos node format killed at ${kills} random instants (${partitions} partitions, seed ${seed})`);
  const { t, cleanup } = fakeContext();
  const started = Date.now();
  try {
    const { runMs, applyMs, planned, rounds } = await randomKills(t, {
      seed, kills, partitions,
      round: (r, i) => {
        if (r.problems.length > 0) console.log(`kill ${i + 1} (${r.delayMs} ms after its ${r.from}): NOT CONVERGED: ${r.problems.join(' | ')}`);
      },
    });
    const killed = rounds.filter((r) => r.killed);
    const within = killed.filter((r) => r.stepsLeft !== null && r.stepsLeft > 0 && r.stepsLeft < planned).length;
    const before = killed.filter((r) => r.stepsLeft === planned).length;
    const after = killed.filter((r) => r.stepsLeft === 0).length;
    const failed = rounds.filter((r) => r.problems.length > 0).length;
    console.log(`uninterrupted run: ${runMs} ms (${applyMs} ms from its first step), ${planned} steps`);
    console.log(`${kills} runs: ${killed.length} killed (${rounds.length - killed.length} had finished); by what the next run planned: ` +
      `${before} before any step, ${within} between steps, ${after} after the last; ` +
      `${rounds.filter((r) => r.journalLeft).length} inside the user-database commit (journal left)`);
    console.log(`converged: ${rounds.length - failed} of ${rounds.length} (seed ${seed}); ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (failed > 0) process.exitCode = 1;
  } finally {
    await cleanup();
  }
}
