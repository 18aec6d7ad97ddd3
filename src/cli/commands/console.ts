// `slapos console`: Node's REPL with the SLAP client bound, as the
// reference's Python console (slap-protocol.md §3): `request`, `supply`,
// `remove`, `computer`, `partition`, `product`, and the clients themselves.
// Top-level await works, as in any Node REPL.
import { Command } from 'commander';
import { defineAction } from '../context.js';
import { CliError } from '../exit.js';
import { clientSettings } from './client.js';

const HELP = [
  'SlapOS console: the SLAP client of <master_url> is bound (every call returns a promise: use await).',
  '  await request(title, url, { softwareType, parameters, filter, state, shared })',
  '  await supply(url, computerId)      await remove(url, computerId)',
  '  await computer(computerId)         the computer\'s software releases and partitions',
  '  await partition(computerId, id)    one partition',
  '  await product(name)                the software releases of a product',
  '  slap, hateoas                      the clients (SlapClient, HateoasClient)',
].join('\n');

export function consoleCommand(): Command {
  const command = new Command('console')
    .summary('interactive session with the SLAP client bound (request, supply, computer, partition, …)')
    .description(`${HELP}\n\nWith -e, evaluates the code (the same names bound), prints its result as JSON and exits.`)
    .option('-e, --eval <code>', 'evaluate this code instead of starting a session');
  return defineAction(command, async (ctx, _args, options) => {
    const { url, restUrl, options: tls } = await clientSettings(ctx.globals.cfg);
    const [{ SlapClient }, { HateoasClient }] = await Promise.all([import('../../slap/client.js'), import('../../slap/hateoas-client.js')]);
    const slap = new SlapClient(url, tls);
    const hateoas = new HateoasClient(restUrl, tls);
    type RequestOptions = Parameters<typeof slap.requestComputerPartition>[2];
    const bindings: Record<string, unknown> = {
      slap, hateoas,
      request: (title: string, release: string, opts: RequestOptions = {}) => slap.requestComputerPartition(release, title, opts),
      supply: (release: string, computerId: string) => slap.supplySupply(release, computerId, 'available'),
      remove: (release: string, computerId: string) => slap.supplySupply(release, computerId, 'destroyed'),
      computer: (computerId: string) => slap.getFullComputerInformation(computerId),
      partition: (computerId: string, id: string) => slap.registerComputerPartition(computerId, id),
      product: (name: string) => slap.getSoftwareReleaseListFromSoftwareProduct(name),
    };
    try {
      if (options.eval !== undefined) {
        // The user's own code, with the bindings as parameters (as `python -c` with the console's globals).
        const names = Object.keys(bindings);
        // eslint-disable-next-line @typescript-eslint/no-implied-eval
        const run = new Function(...names, `return (async () => (${String(options.eval)}))();`) as (...values: unknown[]) => Promise<unknown>;
        let result: unknown;
        try {
          result = await run(...names.map((n) => bindings[n]));
        } catch (error) {
          throw new CliError(`console: ${error instanceof Error ? error.message : String(error)}`);
        }
        ctx.out(JSON.stringify(result ?? null, null, 2));
        return 0;
      }
      const { start } = await import('node:repl');
      ctx.out(HELP);
      const session = start({ prompt: 'slapos> ' });
      Object.assign(session.context, bindings);
      await new Promise<void>((resolve) => session.on('exit', () => resolve()));
      return 0;
    } finally {
      await slap.close();
      await hateoas.close();
    }
  });
}
