import { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { defineAction } from '../context.js';
import { CliError } from '../exit.js';

/** The reference's spellings (slapformat.md §2.3) → ours: the same option under both names. */
const REFERENCE_SPELLINGS = { computer_xml: 'computerXml', computer_json: 'computerJson', alter_user: 'alterUser', alter_network: 'alterNetwork', dry_run: 'dryRun' } as const;

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
    .option('--allow-offline-shrink', 'remove surplus partitions even when the master cannot say whether they are busy')
    .option('--computer_xml <path>', 'same as --computer-xml (the reference\'s spelling)')
    .option('--computer_json <path>', 'same as --computer-json (the reference\'s spelling)')
    .option('--alter_user <bool>', 'same as --alter-user (the reference\'s spelling)')
    .option('--alter_network <bool>', 'same as --alter-network (the reference\'s spelling)')
    .option('--dry_run', 'same as --dry-run (the reference\'s spelling)')
    .option('-i, --input_definition_file <file>', 'the reference\'s definition file ([computer], [partition_<i>]: address, ipv6_range, user, ' +
      'network_interface, pathname): the partitions\' addresses and ranges are taken from it; its names must be this node\'s ' +
      '([slapformat] input_definition_file)')
    .option('-o, --output_definition_file <file>', 'write the formatted computer as a definition file ([slapformat] output_definition_file)')
    .option('-c, --console', 'obsolete, ignored (as the reference)');
  return defineAction(command, async (ctx, _args, options) => {
    for (const [theirs, ours] of Object.entries(REFERENCE_SPELLINGS)) {
      if (options[theirs] === undefined) continue;
      if (options[ours] !== undefined && options[ours] !== options[theirs]) throw new CliError(`--${theirs} and --${ours.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} disagree`);
      options[ours] = options[theirs];
    }
    const config = ctx.config();
    ctx.requireRoot();
    const input = (options.input_definition_file as string | undefined) ?? config.slapformat.input_definition_file;
    const output = (options.output_definition_file as string | undefined) ?? config.slapformat.output_definition_file;
    let definition: { file: string; text: string } | undefined;
    if (input !== undefined) {
      try {
        definition = { file: input, text: readFileSync(input, 'utf8') };
      } catch (error) {
        throw new CliError(`--input_definition_file: cannot read ${input}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      }
    }
    // Written once the node is formatted (the reference writes it before, from a computer not yet formatted).
    const writeDefinition = output === undefined ? undefined : (text: string) => {
      writeFileSync(output, text, { mode: 0o644 });
      ctx.log.info({ path: output }, 'definition file written');
    };
    // Loaded here so that other commands do not load format's modules, and format loads only its own.
    const { runFormat } = await import('../../format/run.js');
    const status = await runFormat(config, { ...options, ...(definition ? { definition } : {}), ...(writeDefinition ? { writeDefinition } : {}) },
      ctx.log.child({ loop: 'format' }), (text) => ctx.out(text));
    if (status === 0 && !options.dryRun) ctx.hint('supply a software release to this node: slapos supply <url> <computer_id>, then slapos node software', Boolean(options.json));
    return status;
  });
}
