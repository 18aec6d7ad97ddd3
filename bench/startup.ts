// `npm run bench -- startup [--rounds N]`: start-up of the CLI as ratios to
// `node -e 0` measured in the same run (alternating, median of pairwise ratios).
// Target (issue 20): `--version` and `--help` at most 1.3×.
import { compare, header, parseArgs, printComparison, nodeNoop, slapos } from './lib.js';

export async function main(args: string[]): Promise<void> {
  const { opts } = parseArgs(args);
  const rounds = Number(opts.get('rounds') ?? 11);
  header('slapos start-up benchmark');
  const cases: Array<[ReturnType<typeof slapos>, number | undefined]> = [
    [slapos('slapos --version', '--version'), 1.3],
    [slapos('slapos --help', '--help'), 1.3],
    [slapos('slapos node --help', 'node', '--help'), undefined],
    [slapos('slapos node format --help', 'node', 'format', '--help'), undefined],
  ];
  for (const [cmd, target] of cases) {
    printComparison(compare(nodeNoop, cmd, rounds), target);
  }
}
