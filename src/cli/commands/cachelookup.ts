// `slapos cachelookup binary-sr|url|pypi`: what the network cache holds
// (src/networkcache/lookup.ts), read from the node's [networkcache] section.
import { Command } from 'commander';
import { defineAction, type CommandContext } from '../context.js';
import { CliError, Exit } from '../exit.js';

type Kind = 'binary-sr' | 'url' | 'pypi';

async function show(ctx: CommandContext, kind: Kind, args: string[], json: boolean): Promise<number> {
  const [{ cacheSettings }, lookup] = await Promise.all([import('../../networkcache/settings.js'), import('../../networkcache/lookup.js')]);
  const settings = cacheSettings(ctx.config());
  try {
    const result = kind === 'binary-sr'
      ? await lookup.lookupBinarySr(settings, args[0] as string)
      : kind === 'url' ? await lookup.lookupUrl(settings, args[0] as string) : await lookup.lookupPypi(settings, args[0] as string, args[1] as string);
    ctx.out(json ? JSON.stringify(result, null, 2) : lookup.formatLookup(result, kind));
    return Exit.SUCCESS;
  } catch (error) {
    if (error instanceof lookup.LookupError) throw new CliError(error.message);
    throw new CliError(`cache lookup failed: ${(error as Error).message}`);
  }
}

export function cachelookupCommand(): Command {
  const command = new Command('cachelookup')
    .summary('show what the network cache holds for a software release, a URL or a Python package')
    .description('Lists the shadir entries of a key with, for each, whether its signature verifies against ' +
      '[networkcache] signature-certificate-list and (releases) whether it suits this machine. Nothing is downloaded.');
  const sub = (name: Kind, args: string, summary: string) => {
    const c = new Command(name).summary(summary).description(summary).option('--json', 'print the entries as JSON');
    for (const arg of args.split(' ')) c.argument(arg);
    return defineAction(c, (ctx, positional, options) => show(ctx, name, positional, Boolean((options as { json?: boolean }).json)));
  };
  command.addCommand(sub('binary-sr', '<url-or-md5>', 'entries of a software release in the binary cache (download-binary-dir-url)'));
  command.addCommand(sub('url', '<url>', 'entries of a downloaded URL in the regular cache (download-dir-url)'));
  command.addCommand(sub('pypi', '<name> <version>', 'entries of a Python distribution in the regular cache (download-dir-url)'));
  return command;
}
