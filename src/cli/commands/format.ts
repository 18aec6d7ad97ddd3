import { Command } from 'commander';
import { defineAction } from '../context.js';

export function formatCommand(): Command {
  const command = new Command('format')
    .summary('prepare this machine as a SlapOS node: users, partitions, taps, addresses, cgroups')
    .description(
      'Creates, for each of [slapformat] partition_amount partitions, a user and group, a partition ' +
        'directory (mode 0750), a tap device, a global IPv6 and a local IPv4 address and a cgroup, then ' +
        'reports the computer to the master. Idempotent: a re-run converges and never loses data.\n\n' +
        'Exit status: 0 formatted and reported, 1 failure, 2 formatted but the master was unreachable.',
    )
    .option('-n, --dry-run', 'print the plan and change nothing')
    .option('--json', 'print the plan or the result as JSON')
    .option('--now', 'start at once (no random delay)')
    .option('-x, --computer-xml <path>', 'override [slapformat] computer_xml')
    .option('--computer-json <path>', 'override [slapformat] computer_json')
    .option('--alter-user <bool>', 'override [slapformat] alter_user (true|false)')
    .option('--alter-network <bool>', 'override [slapformat] alter_network (true|false)')
    .option('--allow-offline-shrink', 'remove surplus partitions even when the master cannot say whether they are busy');
  return defineAction(command, async (ctx, _args, options) => {
    const config = ctx.config();
    ctx.requireRoot();
    // Loaded here so that other commands do not load format's modules, and format loads only its own.
    const { runFormat } = await import('../../format/run.js');
    return runFormat(config, options, ctx.log.child({ loop: 'format' }), (text) => ctx.out(text));
  });
}
