import { Command } from 'commander';
import { defineAction } from '../context.js';
import { existsSync } from 'node:fs';
import { colourEnabled, colourStates } from '../colour.js';
import { CliError, Exit } from '../exit.js';
import { runSupervisorctl } from './node-misc.js';

/** One line of the hardware status written by `slapos node collect` (pure). */
export function formatHardwareLine(doc: unknown): string {
  if (doc === null || typeof doc !== 'object') return 'hardware: not collected yet (slapos node collect writes it)';
  const h = doc as { generated_at?: string; cpu?: { cores?: number; model?: string | null }; memory?: { total_bytes?: number }; disks?: unknown[] };
  const gib = (bytes: number | undefined) => (bytes === undefined ? '?' : (bytes / 2 ** 30).toFixed(1));
  const model = h.cpu?.model ? ` (${h.cpu.model})` : '';
  const disks = Array.isArray(h.disks) ? h.disks.length : 0;
  return `hardware: ${h.cpu?.cores ?? '?'} cores${model}, ${gib(h.memory?.total_bytes)} GiB memory, ${disks} ${disks === 1 ? 'disk' : 'disks'}; collected ${h.generated_at ?? '?'}`;
}

/** The latest collect sample of each partition, one line each (pure). */
export function formatUsageLines(samples: ReadonlyArray<{
  partition: string; at: number; cpuUsec: number | null; memoryBytes: number | null; diskBytes: number | null; netTxBytes: number | null; netRxBytes: number | null;
}> | null): string {
  if (samples === null) return 'usage: not readable (the accounting store needs root)';
  if (samples.length === 0) return 'usage: no sample yet (slapos node collect takes them)';
  const mib = (b: number | null) => (b === null ? '?' : b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${(b / 2 ** 20).toFixed(0)} MiB`);
  const lines = ['usage (latest sample; counters since the partition was set up):'];
  for (const s of samples) {
    const at = new Date(s.at * 1000).toISOString().replace('T', ' ').slice(0, 19);
    lines.push(`  ${s.partition}  cpu ${s.cpuUsec === null ? '?' : (s.cpuUsec / 1e6).toFixed(1)} s, memory ${mib(s.memoryBytes)}, disk ${mib(s.diskBytes)}, ` +
      `network in ${mib(s.netTxBytes)} / out ${mib(s.netRxBytes)}  (${at} UTC)`);
  }
  return lines.join('\n');
}

export function statusCommand(): Command {
  const command = new Command('status')
    .summary('show partitions, their processes, promises and backoff; the hardware status')
    .description(
      'The state of supervisord and of every process it runs, each partition\'s last success, backoff and promise results, ' +
        'and the hardware status written by slapos node collect (one line; in full under "hardware" with --json, null before the first collect).\n\n' +
        'Exit status: 0 shown, 1 something could not be read (supervisord\'s socket and partition directories need root).',
    )
    .argument('[programs...]', 'with --plain: the programs to show (e.g. slappart0:*)')
    .option('--plain', "the reference's form: supervisorctl status [programs] (also when programs are given)")
    .option('--json', 'print JSON');
  return defineAction(command, async (ctx, args, options) => {
    if (options.plain || args.length > 0) {
      return runSupervisorctl(ctx, ['status', ...args]);
    }
    const { requireKeys } = await import('../../config/load.js'); // loaded by ctx.config() anyway
    const config = ctx.config();
    const { instance_root } = requireKeys(config, 'slapos', ['instance_root']);
    // Loaded for this command only.
    const [{ readHardwareStatusFile }, { hardwareStatusPath }, { formatPartitionsStatus, readPartitionsStatus },
      { formatProcessesStatus, readProcessesStatus }, { formatPromiseStatus, readPromiseStatus }] = await Promise.all([
      import('../../accounting/hardware.js'), import('../../accounting/settings.js'), import('../../instance/status.js'),
      import('../../supervisor/status.js'), import('../../promise-runner/status.js'),
    ]);
    const { formatManagersStatus, readManagersStatus } = await import('../../managers/status.js');
    const managers = readManagersStatus(config);
    const processes = await readProcessesStatus(instance_root);
    const denied: string[] = [];
    const partitions = readPartitionsStatus(instance_root, Date.now(), denied);
    // etc/ and var/ are root's 0700 directories: only partition names count.
    const unreadablePartitions = denied.filter((id) => id.startsWith(config.slapformat.partition_base_name));
    const promises = readPromiseStatus(instance_root, config.slapformat.partition_base_name);
    const hardware = readHardwareStatusFile(hardwareStatusPath(instance_root));
    const { storePath, UsageStore } = await import('../../accounting/store.js');
    let usage: ReturnType<InstanceType<typeof UsageStore>['latestSamples']> | null = [];
    if (existsSync(storePath(instance_root))) {
      try {
        const store = new UsageStore(storePath(instance_root));
        try { usage = store.latestSamples(); } finally { store.close(); }
      } catch {
        usage = null;
      }
    }
    const unreadable = [
      ...(processes.supervisord.unreadable ? [`supervisord (${processes.supervisord.unreadable})`] : []),
      ...(unreadablePartitions.length > 0 ? [`partition ${unreadablePartitions.length === 1 ? 'directory' : 'directories'} ${unreadablePartitions.join(', ')} (permission denied)`] : []),
    ];
    if (options.json) {
      ctx.out(JSON.stringify({ processes, partitions, promises, usage, hardware, managers, ...(unreadable.length > 0 ? { unreadable } : {}) }, null, 2));
    } else {
      const text = `${formatProcessesStatus(processes)}\npartitions:\n${formatPartitionsStatus(partitions)}\n${formatPromiseStatus(promises)}\n` +
        `${formatUsageLines(usage)}\n${formatHardwareLine(hardware)}\n${formatManagersStatus(managers)}`;
      ctx.out(colourStates(text, colourEnabled()));
    }
    if (unreadable.length > 0) {
      const who = process.getuid?.() === 0 ? '' : '; run it as root';
      throw new CliError(`node status: could not read ${unreadable.join(' and ')}${who}`, Exit.FAILURE);
    }
  });
}
