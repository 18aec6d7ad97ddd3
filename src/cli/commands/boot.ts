import { Command } from 'commander';
import { defineAction, notImplemented } from '../context.js';

export function bootCommand(): Command {
  const command = new Command('boot')
    .summary('at boot: wait for the network, format (retrying), bang, reprocess every partition')
    .description(
      'Waits for a global IPv6 address on the interface, runs "node format --now" until it succeeds ' +
        'and the master answers, sends a bang, and clears the partitions\' .timestamp files so that the ' +
        'next instance run reprocesses them all.',
    );
  return defineAction(command, notImplemented('node boot'));
}
