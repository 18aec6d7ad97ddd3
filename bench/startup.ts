// `npm run bench -- startup [--rounds N]`: start-up of the CLI as ratios to
// `node -e 0` measured in the same run (alternating, median of pairwise ratios).
// Target (issue 20): `--version` and `--help` at most 1.3×.
import { compare, header, parseArgs, printComparison, nodeNoop, repo, slapos, type Cmd } from './lib.js';

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
  if (opts.has('packages')) {
    // What each dependency costs to import on its own (ESM loader start-up included once in each).
    console.log('import cost of single packages (node -e "await import(x)") against node -e 0:');
    const empty: Cmd = { label: 'an empty ES module', argv: [process.execPath, '--input-type=module', '-e', ''] };
    printComparison(compare(nodeNoop, empty, rounds));
    for (const pkg of ['commander', 'zod', 'pino', 'undici', 'execa', 'systeminformation', 'better-sqlite3', 'saxes', 'fastify']) {
      printComparison(compare(nodeNoop, { label: `import('${pkg}')`, argv: [process.execPath, '--input-type=module', '-e', `await import('${pkg}')`], options: { cwd: repo } }, rounds));
    }
  }
}
