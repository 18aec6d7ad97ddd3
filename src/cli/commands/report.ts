import { Command } from 'commander';
import { defineAction, notImplemented } from '../context.js';

export function reportCommand(): Command {
  const command = new Command('report')
    .summary('send usage reports to the master and free destroyed partitions')
    .description(
      'Aggregates the usage samples of each partition (CPU, memory, disk, network, and what the ' +
        'instance reports) into TioXML, posts it to the master, and wipes partitions the master ' +
        'destroyed. Nothing is deleted before the master acknowledged it.',
    )
    .option('--now', 'start at once (no random delay)')
    .option('--json', 'print a JSON summary');
  return defineAction(command, notImplemented('node report'));
}

export function collectCommand(): Command {
  const command = new Command('collect')
    .summary('sample per-partition usage into the local store (run every minute)')
    .option('--json', 'print the samples taken');
  return defineAction(command, notImplemented('node collect'));
}
