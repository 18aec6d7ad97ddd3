import { Command } from 'commander';
import type { SoftwareCommandOptions } from '../../software/command.js';
import { defineAction } from '../context.js';
import { addSlapgridOptions, applySlapgridOptions } from './slapgrid-options.js';

export function softwareCommand(): Command {
  const command = new Command('software')
    .summary('install the software releases the master lists for this node (buildout)')
    .description(
      'Fetches the software releases of this computer from the master, builds each one in ' +
        '<software_root>/<md5(url)> with buildout, reports building/available/error, and removes ' +
        'releases in state destroyed. Exit status: 0 success, 1 a release failed, 10 already running.',
    )
    .option('--now', 'start at once (no random delay)')
    .option('--all', 'reinstall every release, even completed ones')
    .option('--force', 'same as --all')
    .option('--only-sr <urls>', 'only these releases (comma-separated URLs or md5 hashes)')
    .option('--garbage-collect', 'remove software directories no available release uses')
    .option('--json', 'print a JSON summary');
  addSlapgridOptions(command, 'software');
  return defineAction(command, async (ctx, _args, options) => {
    const config = await applySlapgridOptions(ctx.config(), options, 'software');
    ctx.requireRoot();
    const { runSoftwareCommand } = await import('../../software/command.js'); // each command loads only its own code
    const status = await runSoftwareCommand({ config, log: ctx.log, out: ctx.out }, options as SoftwareCommandOptions);
    if (status === 0) ctx.hint('request an instance of an installed release: slapos request <title> <url>, then slapos node instance', Boolean(options.json));
    return status;
  });
}
