import { Command } from 'commander';
import { defineAction } from '../context.js';

export function statusCommand(): Command {
  const command = new Command('status')
    .summary('show partitions, their processes, promises and backoff; the hardware status')
    .description(
      'The state of supervisord and of every process it runs, each partition\'s last success, backoff and promise results, ' +
        'and (--json, under "hardware", null before the first collect) the hardware status written by slapos node collect.',
    )
    .option('--json', 'print JSON');
  return defineAction(command, async (ctx, _args, options) => {
    const { requireKeys } = await import('../../config/load.js'); // loaded by ctx.config() anyway
    const config = ctx.config();
    const { instance_root } = requireKeys(config, 'slapos', ['instance_root']);
    // Loaded for this command only.
    const [{ readHardwareStatusFile }, { hardwareStatusPath }, { formatPartitionsStatus, readPartitionsStatus },
      { formatProcessesStatus, readProcessesStatus }, { formatPromiseStatus, readPromiseStatus }] = await Promise.all([
      import('../../accounting/hardware.js'), import('../../accounting/settings.js'), import('../../instance/status.js'),
      import('../../supervisor/status.js'), import('../../promise-runner/status.js'),
    ]);
    const processes = await readProcessesStatus(instance_root);
    const partitions = readPartitionsStatus(instance_root);
    const promises = readPromiseStatus(instance_root, config.slapformat.partition_base_name);
    if (options.json) {
      const hardware = readHardwareStatusFile(hardwareStatusPath(instance_root));
      ctx.out(JSON.stringify({ processes, partitions, promises, hardware }, null, 2));
      return;
    }
    ctx.out(`${formatProcessesStatus(processes)}\npartitions:\n${formatPartitionsStatus(partitions)}\n${formatPromiseStatus(promises)}`);
  });
}
