// Node sub-commands: promise, bang, watchdog, supervisord, supervisorctl.
// Each action imports its code when it runs, so that the start-up of every
// `slapos` command stays small.
import { Command } from 'commander';
import { watchdogOptions } from '../../supervisor/config.js';
import { defineAction, type CommandContext } from '../context.js';
import { CliError } from '../exit.js';

export function promiseCommand(): Command {
  const command = new Command('promise')
    .summary("run the partitions' promises without reporting (exit 2 on failure)")
    .description(
      'Runs the promises (etc/plugin, etc/promise) of every started partition, as the partition user, ' +
        'each with [slapos] promise_timeout. Started = its supervisord group file exists (the instance loop keeps it ' +
        'while the partition is started). Nothing is reported to the master.\n\n' +
        'Exit status: 0 all kept, 1 a partition could not be checked, 2 a promise failed, 10 instance or promise already running.',
    )
    .option('--only-cp <ids>', 'only these partitions (comma-separated ids)')
    .option('--only <ids>', 'same as --only-cp (the reference\'s alias)')
    .option('--json', 'print a JSON summary');
  return defineAction(command, async (ctx, _args, options) => {
    if (options.only !== undefined && options.onlyCp !== undefined && options.only !== options.onlyCp) throw new CliError('give --only or --only-cp, not both');
    options.onlyCp ??= options.only;
    const { requireKeys } = await import('../../config/load.js'); // loaded by ctx.config() anyway
    const config = ctx.config();
    const slapos = requireKeys(config, 'slapos', ['instance_root']);
    ctx.requireRoot();
    const { withPidFile } = await import('../../util/loop-start.js');
    // The instance loop's pid file: `node promise` and `node instance` exclude each other, as the reference.
    return withPidFile(slapos.pidfile_instance, ctx.log, async () => {
      const { nodePromiseExit, parseOnlyCp, runNodePromises } = await import('../../promise-runner/node-promise.js');
      const { nodeSupervisordPaths } = await import('../../supervisor/daemon.js');
      const summary = await runNodePromises({
        instanceRoot: slapos.instance_root,
        partitionBaseName: config.slapformat.partition_base_name,
        includeDir: nodeSupervisordPaths(slapos.instance_root).includeDir,
        timeout: slapos.promise_timeout,
        onlyCp: parseOnlyCp(options.onlyCp),
        log: ctx.log.child({ loop: 'promise' }),
        softwareRoot: slapos.software_root,
        plugin: { masterUrl: slapos.master_url, computerId: slapos.computer_id, certificateRepository: slapos.certificate_repository_path },
      });
      if (options.json) ctx.out(JSON.stringify(summary, null, 2));
      const failed = summary.checked.filter((r) => r.failed.length > 0).map((r) => r.partition);
      ctx.log.info({ checked: summary.checked.length, failing: failed }, 'promises: partitions checked');
      return nodePromiseExit(summary);
    });
  });
}

export function bangCommand(): Command {
  const command = new Command('bang')
    .summary('tell the master something happened to this computer (computerBang)')
    .requiredOption('-m, --message <text>', 'what happened');
  return defineAction(command, async (ctx, _args, options) => {
    const { requireKeys } = await import('../../config/load.js'); // loaded by ctx.config() anyway
    const config = ctx.config();
    const { master_url } = requireKeys(config, 'slapos', ['master_url', 'computer_id']);
    ctx.out(`Banging to ${master_url}`);
    const { computerBang } = await import('../../promise-runner/bang.js');
    await computerBang(config, String(options.message));
    ctx.out(`Bang with message "${String(options.message)}".`);
  });
}

/**
 * `slapos node watchdog`: the supervisord event listener (also bin/slapos-watchdog.js,
 * which supervisord runs). Register in main.ts with the other node commands to expose it.
 */
export function watchdogCommand(): Command {
  const command = new Command('watchdog')
    .summary('supervisord event listener: bang a partition when a watched service exits')
    .description('Speaks the event listener protocol on stdin/stdout; run by supervisord as [eventlistener:watchdog].');
  return defineAction(command, async (ctx) => (await import('../../promise-runner/watchdog-main.js')).watchdogMain(['--cfg', ctx.configFile, ...(ctx.globals.verbose ? ['-v'] : [])]));
}

export function supervisordCommand(): Command {
  const command = new Command('supervisord')
    .summary("write the node's supervisord configuration and start it if it is not running")
    .option('-n, --nodaemon', 'run in the foreground');
  return defineAction(command, async (ctx, _args, options) => {
    const { requireKeys } = await import('../../config/load.js'); // loaded by ctx.config() anyway
    const config = ctx.config();
    const { instance_root } = requireKeys(config, 'slapos', ['instance_root']);
    ctx.requireRoot();
    const watchdog = watchdogOptions(config);
    const { ensureSupervisord, runSupervisordForeground } = await import('../../supervisor/daemon.js');
    if (options.nodaemon) return runSupervisordForeground(instance_root, { log: ctx.log, ...watchdog });
    const { started, paths } = await ensureSupervisord(instance_root, { log: ctx.log, ...watchdog });
    ctx.out(started ? `supervisord started (${paths.socket})` : `supervisord already running (${paths.socket})`);
  });
}

export function supervisorctlCommand(): Command {
  const command = new Command('supervisorctl')
    .summary("run supervisorctl against the node's supervisord")
    .description("Runs supervisorctl ARGS against the node's supervisord (started first unless [slapos] " +
      'forbid_supervisord_automatic_launch), e.g. `slapos node supervisorctl status`. supervisorctl\'s own help: ' +
      '`slapos node supervisorctl help [action]`. Exit status: supervisorctl\'s.')
    .argument('[args...]', 'supervisorctl arguments')
    .allowUnknownOption();
  return defineAction(command, (ctx, args) => runSupervisorctl(ctx, args));
}

/** supervisorctl with `args` against the node's supervisord (started first unless forbid_supervisord_automatic_launch). */
export async function runSupervisorctl(ctx: CommandContext, args: string[]): Promise<number> {
  const { requireKeys } = await import('../../config/load.js'); // loaded by ctx.config() anyway
  const config = ctx.config();
  const slapos = requireKeys(config, 'slapos', ['instance_root']);
  ctx.requireRoot();
  // As the reference: start supervisord first unless told not to.
  const watchdog = watchdogOptions(config);
  const [{ ensureSupervisord, SUPERVISORCTL, writeSupervisordConfiguration }, { execa }] = await Promise.all([
    import('../../supervisor/daemon.js'),
    import('../../vendor/execa.js'),
  ]);
  const paths = slapos.forbid_supervisord_automatic_launch
    ? writeSupervisordConfiguration(slapos.instance_root, watchdog)
    : (await ensureSupervisord(slapos.instance_root, { log: ctx.log, ...watchdog })).paths;
  const result = await execa(SUPERVISORCTL, ['-c', paths.config, ...args], { stdio: 'inherit', reject: false });
  return result.exitCode ?? 1;
}

/** The reference's `slapos node start|stop|restart|tail`: supervisorctl <action> <programs…>. */
export function supervisorctlAliasCommands(): Command[] {
  const what: Record<string, string> = {
    start: 'start programs of the partitions (e.g. slappart0:* or all)',
    stop: 'stop programs of the partitions (e.g. slappart0:* or all)',
    restart: 'restart programs of the partitions (e.g. slappart0:* or all)',
    tail: "show the end of a program's output (supervisorctl tail [-f] <program> [stdout|stderr])",
  };
  return Object.entries(what).map(([action, summary]) => {
    const command = new Command(action)
      .summary(summary)
      .description(`${summary}: runs \`supervisorctl ${action} ARGS\` against the node's supervisord, as the reference's alias. ` +
        'Exit status: supervisorctl\'s.')
      .argument('[args...]', `supervisorctl ${action} arguments`)
      .allowUnknownOption();
    return defineAction(command, (ctx, args) => runSupervisorctl(ctx, [action, ...args]));
  });
}
