// The reference's options of `slapos node software|instance` (slapgrid.md §8.2)
// that stand in for [slapos] keys, beside our own options. Values are checked
// as slapos.cfg's are (src/config/override.ts); `--supervisord-socket` and
// `--supervisord-configuration-path` are accepted and unused, as there.
import type { Command } from 'commander';
import type { SlaposConfig } from '../../config/load.js';
import { CliError } from '../exit.js';

type Loop = 'software' | 'instance';

/** option flag → [slapos] key (the pid file depends on the loop). */
const KEYS: ReadonlyArray<[flag: string, key: string | ((loop: Loop) => string), help: string]> = [
  ['--master-url <url>', 'master_url', 'master URL ([slapos] master_url)'],
  ['--computer-id <id>', 'computer_id', 'computer reference ([slapos] computer_id)'],
  ['--software-root <dir>', 'software_root', 'software directory ([slapos] software_root)'],
  ['--instance-root <dir>', 'instance_root', 'partitions directory ([slapos] instance_root)'],
  ['--buildout <path>', 'buildout', 'buildout to run ([slapos] buildout)'],
  ['--pidfile <file>', (loop) => `pidfile_${loop}`, 'pid file of this loop ([slapos] pidfile_software / pidfile_instance)'],
  ['--key_file <file>', 'key_file', "computer's TLS key ([slapos] key_file)"],
  ['--cert_file <file>', 'cert_file', "computer's TLS certificate ([slapos] cert_file)"],
  ['--master_ca_file <file>', 'master_ca_file', "CA of the master's certificate ([slapos] master_ca_file)"],
  ['--signature_private_key_file <file>', 'signature_private_key_file', '[slapos] signature_private_key_file'],
  ['--certificate_repository_path <dir>', 'certificate_repository_path', 'partition certificates ([slapos] certificate_repository_path)'],
  ['--maximum-periodicity <seconds>', 'maximum_periodicity', '[slapos] maximum_periodicity'],
  ['--maximal_delay <seconds>', 'maximal_delay', 'random start delay upper bound, unless --now ([slapos] maximal_delay)'],
  ['--promise-timeout <seconds>', 'promise_timeout', 'seconds a promise may run ([slapos] promise_timeout)'],
  ['--partition-timeout <seconds>', 'partition_timeout', 'seconds an instance buildout may run ([slapos] partition_timeout)'],
];

/** Commander's attribute name: dashes camel-cased, underscores kept (--key_file → key_file). */
const attribute = (flag: string) => (flag.split(' ')[0] ?? '').replace(/^--/, '').replace(/-(.)/g, (_m, c: string) => c.toUpperCase());

export function addSlapgridOptions(command: Command, loop: Loop): Command {
  for (const [flag, , help] of KEYS) command.option(flag, help);
  return command
    .option('--buildout-debug', 'run buildout with -D (its debugger on error)')
    .option('--supervisord-socket <path>', 'accepted for compatibility, unused (as the reference)')
    .option('--supervisord-configuration-path <path>', 'accepted for compatibility, unused (as the reference)')
    .option('--only <list>', `same as --only-${loop === 'software' ? 'sr' : 'cp'}`);
}

/** The configuration with the options' values in [slapos]; `--only` folded into onlySr/onlyCp. */
export async function applySlapgridOptions(config: SlaposConfig, options: Record<string, unknown>, loop: Loop): Promise<SlaposConfig> {
  const { overrideKeys } = await import('../../config/override.js');
  const values: Record<string, string> = {};
  const flags: Record<string, string> = {};
  for (const [flag, key] of KEYS) {
    const value = options[attribute(flag)];
    if (value === undefined) continue;
    const name = typeof key === 'string' ? key : key(loop);
    values[name] = String(value);
    flags[name] = flag.split(' ')[0] ?? flag;
  }
  const only = loop === 'software' ? 'onlySr' : 'onlyCp';
  if (options.only !== undefined) {
    if (options[only] !== undefined && options[only] !== options.only) throw new CliError(`give --only or --only-${loop === 'software' ? 'sr' : 'cp'}, not both`);
    options[only] = options.only;
  }
  return overrideKeys(config, 'slapos', values, (key) => flags[key] ?? key);
}
