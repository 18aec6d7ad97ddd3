import { Command } from 'commander';
import { requireKeys } from '../../config/load.js';
import { formatProcessesStatus, readProcessesStatus } from '../../supervisor/status.js';
import { formatPromiseStatus, readPromiseStatus } from '../../promise-runner/status.js';
import { defineAction } from '../context.js';

export function statusCommand(): Command {
  const command = new Command('status')
    .summary('show partitions, their processes, promises and backoff; the hardware status')
    .description('For now: the state of supervisord and of every process it runs.')
    .option('--json', 'print JSON');
  return defineAction(command, async (ctx, _args, options) => {
    const config = ctx.config();
    const { instance_root } = requireKeys(config, 'slapos', ['instance_root']);
    const status = await readProcessesStatus(instance_root);
    const promises = readPromiseStatus(instance_root, config.slapformat.partition_base_name);
    ctx.out(options.json ? JSON.stringify({ processes: status, promises }, null, 2) : `${formatProcessesStatus(status)}\n${formatPromiseStatus(promises)}`);
  });
}
