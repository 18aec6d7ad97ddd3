// `slapos node instance` from configuration to exit status: settings, random
// delay, pid file, supervisord (on first use; with its watchdog after every pass),
// master link, loop, JSON summary.
import type { SlaposConfig } from '../config/load.js';
import { Exit, UsageError } from '../util/exit-status.js';
import { SupervisorClient } from '../supervisor/client.js';
import { watchdogOptions } from '../supervisor/config.js';
import { ensureSupervisord, nodeSupervisordPaths, writeSupervisordConfiguration } from '../supervisor/daemon.js';
import type { Logger } from '../util/log.js';
import { randomStartDelay, withPidFile } from '../util/loop-start.js';
import { processInstances, UnknownPartitionError } from './loop.js';
import { connectInstanceMaster, type InstanceMasterLink } from './master-link.js';
import { instanceSettings } from './settings.js';
import { PassProgress, ProgressLine, progressMode } from '../util/progress.js';

export interface InstanceCommandOptions {
  now?: boolean;
  all?: boolean;
  force?: boolean;
  onlyCp?: string;
  forceStop?: boolean;
  /** --buildout-debug: instance buildouts run with -D. */
  buildoutDebug?: boolean;
  json?: boolean;
}

export interface InstanceCommandDeps {
  config: SlaposConfig;
  log: Logger;
  out(text: string): void;
  link?: (config: SlaposConfig) => InstanceMasterLink;
}

export async function runInstanceCommand(deps: InstanceCommandDeps, options: InstanceCommandOptions): Promise<number> {
  const { config } = deps;
  const log = deps.log.child({ loop: 'instance' });
  const settings = { ...instanceSettings(config), buildoutDebug: Boolean(options.buildoutDebug) };
  const develop = Boolean(options.all || options.force);
  if (options.all && options.onlyCp !== undefined) throw new UsageError('--all and --only-cp cannot be used together');
  await randomStartDelay(config.slapos.maximal_delay, options.now, log);
  return withPidFile(settings.pidFile, log, async () => {
    const link = (deps.link ?? connectInstanceMaster)(config);
    try {
    let supervisor: { client: SupervisorClient; includeDir: string } | undefined;
    const ensureSupervisor = async () => {
      if (!supervisor) {
        const paths = settings.forbidSupervisordLaunch
          ? (writeSupervisordConfiguration(settings.instanceRoot, watchdogOptions(config)), nodeSupervisordPaths(settings.instanceRoot))
          : (await ensureSupervisord(settings.instanceRoot, { log, ...watchdogOptions(config) })).paths;
        supervisor = { client: new SupervisorClient(paths.socket), includeDir: paths.includeDir };
      }
      return supervisor;
    };
    const { createManagers } = await import('../managers/create.js');
    const { exitCode, summary } = await processInstances({
      settings, link, develop, forceStop: Boolean(options.forceStop), onlyCp: options.onlyCp, log, supervisor: ensureSupervisor,
      managers: await createManagers(config, log),
      progress: new PassProgress(new ProgressLine(process.stderr, progressMode(process.stderr, Boolean(options.json)))),
    });
    // Every pass leaves supervisord with this configuration's watchdog (the
    // reference launches supervisord at each run), also when no partition
    // needed it: a destruction or an offline run with another --cfg may have
    // changed or removed it.
    await ensureSupervisor();
    if (options.json) deps.out(JSON.stringify({ exitCode, ...summary }, null, 2));
    log.info(
      { processed: summary.processed.length, up_to_date: summary.upToDate.length, failed: summary.failed.length, free: summary.free.length,
        missing: summary.missing.length, ...(summary.offline ? { offline: true } : {}), duration_ms: summary.ms },
      'instance:',
    );
    return exitCode;
    } catch (error) {
    if (error instanceof UnknownPartitionError) throw new UsageError(`--only-cp: ${error.message}`);
    throw error;
    } finally {
    await link.close().catch(() => undefined);
    }
  });
}
