// `slapos node instance` from configuration to exit status: settings, random
// delay, pid file, supervisord (on first use), master link, loop, JSON summary.
import { setTimeout as sleep } from 'node:timers/promises';
import type { SlaposConfig } from '../config/load.js';
import { CliError, Exit } from '../cli/exit.js';
import { SupervisorClient } from '../supervisor/client.js';
import { watchdogOptions } from '../supervisor/config.js';
import { ensureSupervisord, nodeSupervisordPaths, writeSupervisordConfiguration } from '../supervisor/daemon.js';
import type { Logger } from '../util/log.js';
import { acquirePidFile, AlreadyRunningError } from '../util/pidfile.js';
import { processInstances, UnknownPartitionError } from './loop.js';
import { connectInstanceMaster, type InstanceMasterLink } from './master-link.js';
import { instanceSettings } from './settings.js';

export interface InstanceCommandOptions {
  now?: boolean;
  all?: boolean;
  force?: boolean;
  onlyCp?: string;
  forceStop?: boolean;
  json?: boolean;
}

export interface InstanceCommandDeps {
  config: SlaposConfig;
  log: Logger;
  out(text: string): void;
  link?: (config: SlaposConfig) => InstanceMasterLink;
}

export async function runInstanceCommand(deps: InstanceCommandDeps, options: InstanceCommandOptions): Promise<number> {
  const { config, log } = deps;
  const settings = instanceSettings(config);
  const develop = Boolean(options.all || options.force);
  if (options.all && options.onlyCp !== undefined) throw new CliError('--all and --only-cp cannot be used together');
  const delay = config.slapos.maximal_delay;
  if (!options.now && delay > 0) {
    const seconds = 1 + Math.floor(Math.random() * delay);
    log.info(`sleeping ${seconds} s before starting (maximal_delay; --now to skip)`);
    await sleep(seconds * 1000);
  }
  let lock;
  try {
    lock = acquirePidFile(settings.pidFile);
  } catch (error) {
    if (!(error instanceof AlreadyRunningError)) throw error;
    log.info(`New slapos process started, but ${error.message}`);
    return Exit.ALREADY_RUNNING;
  }
  const link = (deps.link ?? connectInstanceMaster)(config);
  try {
    if (lock.replacedStale) log.info(`Existing pid file '${settings.pidFile}' was stale, overwritten`);
    let supervisor: { client: SupervisorClient; includeDir: string } | undefined;
    const { exitCode, summary } = await processInstances({
      settings, link, develop, forceStop: Boolean(options.forceStop), onlyCp: options.onlyCp, log,
      async supervisor() {
        if (!supervisor) {
          const paths = settings.forbidSupervisordLaunch
            ? (writeSupervisordConfiguration(settings.instanceRoot, watchdogOptions(config)), nodeSupervisordPaths(settings.instanceRoot))
            : (await ensureSupervisord(settings.instanceRoot, { log, ...watchdogOptions(config) })).paths;
          supervisor = { client: new SupervisorClient(paths.socket), includeDir: paths.includeDir };
        }
        return supervisor;
      },
    });
    if (options.json) deps.out(JSON.stringify({ exitCode, ...summary }, null, 2));
    log.info(
      `instance: ${summary.processed.length} processed, ${summary.upToDate.length} up to date, ` +
        `${summary.failed.length} failed, ${summary.free.length} free, ${summary.missing.length} missing` +
        `${summary.offline ? ' (offline)' : ''} in ${summary.ms} ms`,
    );
    return exitCode;
  } catch (error) {
    if (error instanceof UnknownPartitionError) throw new CliError(`--only-cp: ${error.message}`, Exit.FAILURE);
    throw error;
  } finally {
    await link.close().catch(() => undefined);
    lock.release();
  }
}
