import { Command } from 'commander';
import { CliError } from '../exit.js';
import { defineAction } from '../context.js';

function seconds(name: string, value: unknown, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new CliError(`${name}: expected a number of seconds, got "${String(value)}"`);
  return Math.round(n * 1000);
}

export function bootCommand(): Command {
  const command = new Command('boot')
    .summary('at boot: wait for the network, format (retrying), bang, reprocess every partition')
    .description(
      'Waits for a global IPv6 address on [slapformat] ipv6_interface (or interface_name), runs format ' +
        'until it succeeds and the master answers, sends a bang ("Reboot"), and clears the partitions\' ' +
        '.timestamp files so that the next instance run reprocesses them all. Run once at boot by ' +
        'slapos-node-format.service.\n\n' +
        'Exit status: 0 done, 1 no global IPv6 in time or a configuration error, 5 not root.',
    )
    .option('--retry-delay <seconds>', 'delay between format, master and bang attempts', '15')
    .option('--ipv6-timeout <seconds>', 'how long to wait for a global IPv6 address', '600')
    .option('-m, --message <text>', 'ignored, as in the reference (the bang message is "Reboot")');
  return defineAction(command, async (ctx, _args, options) => {
    const { BootError, DEFAULT_BOOT_TIMINGS, runBoot } = await import('../../node/boot.js'); // loaded when the command runs
    const config = ctx.config();
    ctx.requireRoot();
    const timings = {
      ...DEFAULT_BOOT_TIMINGS,
      retryDelayMs: seconds('--retry-delay', options.retryDelay, DEFAULT_BOOT_TIMINGS.retryDelayMs),
      ipv6TimeoutMs: seconds('--ipv6-timeout', options.ipv6Timeout, DEFAULT_BOOT_TIMINGS.ipv6TimeoutMs),
    };
    timings.ipv6PollMs = Math.min(DEFAULT_BOOT_TIMINGS.ipv6PollMs, Math.max(100, timings.retryDelayMs));
    try {
      return await runBoot({ config, log: ctx.log, timings });
    } catch (error) {
      if (error instanceof BootError) throw new CliError(error.message);
      throw error;
    }
  });
}
