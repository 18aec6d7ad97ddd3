import { Command } from 'commander';
import { defineAction, notImplemented } from '../context.js';

export function statusCommand(): Command {
  const command = new Command('status')
    .summary('show partitions, their processes, promises and backoff; the hardware status')
    .option('--json', 'print JSON');
  return defineAction(command, notImplemented('node status'));
}
