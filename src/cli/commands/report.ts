import { Command } from 'commander';
import { defineAction } from '../context.js';

export function reportCommand(): Command {
  const command = new Command('report')
    .summary('send usage reports to the master and free destroyed partitions')
    .description(
      'Aggregates the usage samples of each partition (CPU, memory, disk, network, and what the ' +
        'instance reports) into TioXML, posts it to the master, and wipes partitions the master ' +
        'destroyed. Nothing is deleted before the master acknowledged it.\n' +
        'Exit: 0 ok, 1 a report script, a destruction or the master failed (reports kept), 5 not root, 10 already running.',
    )
    .option('--now', 'start at once (no random delay)')
    .option('--json', 'print a JSON summary');
  return defineAction(command, async (ctx, _args, options) => {
    ctx.requireRoot();
    const { runReportCommand } = await import('../../accounting/command.js'); // loaded when the command runs
    return runReportCommand({ config: ctx.config(), log: ctx.log, out: (t) => ctx.out(t) }, { now: Boolean(options.now), json: Boolean(options.json) });
  });
}

export function collectCommand(): Command {
  const command = new Command('collect')
    .summary('sample per-partition usage into the local store (run every minute)')
    .description('Also writes the world-readable hardware status <instance_root>/var/hardware-status.json.\n' +
      'Exit: 0 ok, 1 error, 5 not root, 10 already running.')
    .option('--json', 'print the samples taken');
  return defineAction(command, async (ctx, _args, options) => {
    ctx.requireRoot();
    const { runCollectCommand } = await import('../../accounting/command.js');
    return runCollectCommand({ config: ctx.config(), log: ctx.log, out: (t) => ctx.out(t) }, { json: Boolean(options.json) });
  });
}
