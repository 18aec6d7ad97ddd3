import { Command } from 'commander';
import { requireKeys } from '../../config/load.js';
import { formatPartitionsStatus, readPartitionsStatus } from '../../instance/status.js';
import { formatProcessesStatus, readProcessesStatus } from '../../supervisor/status.js';
import { defineAction } from '../context.js';

export function statusCommand(): Command {
  const command = new Command('status')
    .summary('show partitions, their processes, promises and backoff; the hardware status')
    .description('For now: the state of supervisord and of every process it runs, and each partition\'s last success and backoff.')
    .option('--json', 'print JSON');
  return defineAction(command, async (ctx, _args, options) => {
    const { instance_root } = requireKeys(ctx.config(), 'slapos', ['instance_root']);
    const status = await readProcessesStatus(instance_root);
    const partitions = readPartitionsStatus(instance_root);
    ctx.out(
      options.json
        ? JSON.stringify({ processes: status, partitions }, null, 2)
        : `${formatProcessesStatus(status)}\npartitions:\n${formatPartitionsStatus(partitions)}`,
    );
  });
}
