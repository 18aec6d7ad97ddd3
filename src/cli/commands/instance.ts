import { Command } from 'commander';
import { defineAction, importCommandModule } from '../context.js';
import { addSlapgridOptions, applySlapgridOptions } from './slapgrid-options.js';

export function instanceCommand(): Command {
  const command = new Command('instance')
    .summary('configure every partition, one at a time, and run its processes under supervisord')
    .description(
      'Fetches the partitions of this computer from the master and processes them strictly one at a ' +
        'time: runs the instance profile as the partition user, hands its processes to supervisord, ' +
        'runs its promises and reports the state. Unchanged partitions are skipped; a failing one waits ' +
        '(exponential backoff) unless --all or --only-cp names it.\n\n' +
        'Exit status: 0 success, 1 failure, 2 promise failures only, 3 offline restart, 10 already running.',
    )
    .option('--now', 'start at once (no random delay)')
    .option('--all', 'process every partition, even up-to-date or backing-off ones')
    .option('--force', 'same as --all')
    .option('--only-cp <ids>', 'only these partitions (comma-separated ids)')
    .option('--force-stop', 'run buildout then stop the processes')
    .option('--json', 'print a JSON summary');
  addSlapgridOptions(command, 'instance');
  return defineAction(command, async (ctx, _args, options) => {
    // Loaded when the command runs, from its bundle when there is one (context.ts).
    const { runInstanceCommand } = await importCommandModule<typeof import('../../instance/command.js')>('../instance/command');
    const config = await applySlapgridOptions(ctx.config(), options, 'instance');
    ctx.requireRoot();
    return runInstanceCommand({ config, log: ctx.log, out: (text) => ctx.out(text) }, options);
  });
}
