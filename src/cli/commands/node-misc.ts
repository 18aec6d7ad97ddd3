// Node sub-commands of later stages, registered now so that --help lists them.
import { Command } from 'commander';
import { requireKeys } from '../../config/load.js';
import { defineAction, notImplemented } from '../context.js';

export function promiseCommand(): Command {
  const command = new Command('promise')
    .summary("run the partitions' promises without reporting (exit 2 on failure)")
    .option('--only-cp <ids>', 'only these partitions (comma-separated ids)');
  return defineAction(command, notImplemented('node promise'));
}

export function bangCommand(): Command {
  const command = new Command('bang')
    .summary('tell the master something happened to this computer (computerBang)')
    .requiredOption('-m, --message <text>', 'what happened');
  return defineAction(command, notImplemented('node bang'));
}

export function supervisordCommand(): Command {
  const command = new Command('supervisord')
    .summary("write the node's supervisord configuration and start it if it is not running")
    .option('-n, --nodaemon', 'run in the foreground');
  return defineAction(command, async (ctx, _args, options) => {
    const { instance_root } = requireKeys(ctx.config(), 'slapos', ['instance_root']);
    ctx.requireRoot();
    // supervisor code is loaded by the commands that use it only.
    const { ensureSupervisord, runSupervisordForeground } = await import('../../supervisor/daemon.js');
    if (options.nodaemon) return runSupervisordForeground(instance_root, { log: ctx.log });
    const { started, paths } = await ensureSupervisord(instance_root, { log: ctx.log });
    ctx.out(started ? `supervisord started (${paths.socket})` : `supervisord already running (${paths.socket})`);
  });
}

export function supervisorctlCommand(): Command {
  const command = new Command('supervisorctl')
    .summary("run supervisorctl against the node's supervisord")
    .argument('[args...]', 'supervisorctl arguments')
    .allowUnknownOption()
    .helpOption(false);
  return defineAction(command, async (ctx, args) => {
    const slapos = requireKeys(ctx.config(), 'slapos', ['instance_root']);
    ctx.requireRoot();
    const [{ ensureSupervisord, SUPERVISORCTL, writeSupervisordConfiguration }, { execa }] = await Promise.all([
      import('../../supervisor/daemon.js'),
      import('execa'),
    ]);
    // As the reference: start supervisord first unless told not to.
    const paths = slapos.forbid_supervisord_automatic_launch
      ? writeSupervisordConfiguration(slapos.instance_root)
      : (await ensureSupervisord(slapos.instance_root, { log: ctx.log })).paths;
    const result = await execa(SUPERVISORCTL, ['-c', paths.config, ...args], { stdio: 'inherit', reject: false });
    return result.exitCode ?? 1;
  });
}
