import { Command } from 'commander';
import { existsSync } from 'node:fs';
import { defineAction } from '../context.js';
import { CliError } from '../exit.js';

/** The reference's status for "nothing to prune with" and "software is running". */
const PRUNE_REFUSED = 255;
const collect = (value: string, previous: string[] = []) => [...previous, value];

export function pruneCommand(): Command {
  const command = new Command('prune')
    .summary('remove the shared parts (shared_part_list) no software release or nested SlapOS tree uses')
    .description(
      'Looks at <last entry of [slapos] shared_part_list>/<name>/<hash> and removes each part whose hash appears in no ' +
        "release's .installed.cfg or bin/* script, no signature file of a kept part, and no such file of the SlapOS trees " +
        'nested in partitions (their slapos.cfg). Repeats until nothing more is unused. Nothing outside that directory is ' +
        'removed; reads never follow a link.\n\n' +
        'Exit status: 0 done, 1 failure, 10 prune or software already running, 255 no shared_part_list, or software running (pid file present).',
    )
    .option('--dry-run', 'only print what would be removed')
    .option('--additional-software-directory <dir>', 'also look for users in this software directory (repeatable)', collect)
    .option('--json', 'print {root, removed, dryRun} as JSON');
  return defineAction(command, async (ctx, _args, options) => {
    const { requireKeys } = await import('../../config/load.js'); // loaded by ctx.config() anyway
    const config = ctx.config();
    const slapos = requireKeys(config, 'slapos', ['software_root', 'instance_root']);
    if (slapos.shared_part_list.filter((l) => l.trim()).length === 0) throw new CliError('No shared_part_list options in slapos config', PRUNE_REFUSED);
    ctx.requireRoot();
    const dryRun = Boolean(options.dryRun);
    const [{ pruneSharedParts }, { withPidFile }] = await Promise.all([import('../../software/prune.js'), import('../../util/loop-start.js')]);
    const run = async () => {
      const result = pruneSharedParts({
        sharedPartList: slapos.shared_part_list, softwareRoot: slapos.software_root, instanceRoot: slapos.instance_root,
        additionalSoftwareDirectories: (options.additionalSoftwareDirectory as string[] | undefined) ?? [], dryRun, log: ctx.log,
      });
      ctx.out(options.json ? JSON.stringify(result, null, 2)
        : `${result.removed.length} unused shared ${result.removed.length === 1 ? 'part' : 'parts'}${dryRun ? ' (dry run: nothing removed)' : ' removed'}`);
      return 0;
    };
    if (dryRun) return run();
    // As the reference: never while software runs (a stale pid file blocks too); prune then holds that pid file.
    if (existsSync(slapos.pidfile_software)) throw new CliError('Cannot prune while software is running', PRUNE_REFUSED);
    return withPidFile(slapos.pidfile_software, ctx.log, run);
  });
}
