import { Command } from 'commander';
import { requireKeys } from '../../config/load.js';
import { defineAction } from '../context.js';

export function statusCommand(): Command {
  const command = new Command('status')
    .summary('show partitions, their processes, promises and backoff; the hardware status')
    .description('For now: the state of supervisord and of every process it runs.')
    .option('--json', 'print JSON');
  return defineAction(command, async (ctx, _args, options) => {
    const { instance_root } = requireKeys(ctx.config(), 'slapos', ['instance_root']);
    const { formatProcessesStatus, readProcessesStatus } = await import('../../supervisor/status.js'); // loaded for this command only
    const status = await readProcessesStatus(instance_root);
    ctx.out(options.json ? JSON.stringify({ processes: status }, null, 2) : formatProcessesStatus(status));
  });
}
