import { Command } from 'commander';
import { readHardwareStatusFile } from '../../accounting/hardware.js';
import { hardwareStatusPath } from '../../accounting/settings.js';
import { requireKeys } from '../../config/load.js';
import { formatProcessesStatus, readProcessesStatus } from '../../supervisor/status.js';
import { defineAction } from '../context.js';

export function statusCommand(): Command {
  const command = new Command('status')
    .summary('show partitions, their processes, promises and backoff; the hardware status')
    .description('For now: the state of supervisord and of every process it runs, and the hardware status ' +
      'written by slapos node collect (--json: under "hardware", null before the first collect).')
    .option('--json', 'print JSON');
  return defineAction(command, async (ctx, _args, options) => {
    const { instance_root } = requireKeys(ctx.config(), 'slapos', ['instance_root']);
    const status = await readProcessesStatus(instance_root);
    if (options.json) {
      ctx.out(JSON.stringify({ processes: status, hardware: readHardwareStatusFile(hardwareStatusPath(instance_root)) }, null, 2));
      return;
    }
    ctx.out(formatProcessesStatus(status));
  });
}
