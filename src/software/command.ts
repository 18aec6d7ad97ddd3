// `slapos node software` from configuration to exit status: required keys,
// random delay, pid file, master link, loop, JSON summary. The command file
// only parses options; tests call runSoftwareCommand with a fake master link.
import { requireKeys, type SlaposConfig } from '../config/load.js';
import { Exit, UsageError } from '../util/exit-status.js';
import type { Logger } from '../util/log.js';
import { randomStartDelay, withPidFile } from '../util/loop-start.js';
import { writeSupervisordConfiguration } from '../supervisor/daemon.js';
import { watchdogOptions } from '../supervisor/config.js';
import { buildoutCommand } from './buildout.js';
import { BuildProgress, ProgressLine, progressMode } from '../util/progress.js';
import { softwareUser } from './install.js';
import { processSoftwareReleases } from './loop.js';
import { connectSoftwareMaster, type SoftwareMasterLink } from './master-link.js';
import { parseOnlySr } from './plan.js';
import { existsSync } from 'node:fs';
import { cacheSettings, configuredFiles } from '../networkcache/settings.js';

export interface SoftwareCommandOptions {
  now?: boolean;
  all?: boolean;
  force?: boolean;
  onlySr?: string;
  garbageCollect?: boolean;
  /** --buildout-debug: buildout runs with -D. */
  buildoutDebug?: boolean;
  json?: boolean;
}

export interface SoftwareCommandDeps {
  config: SlaposConfig;
  log: Logger;
  out(text: string): void;
  /** Defaults to connectSoftwareMaster (the SLAP client). */
  link?: (config: SlaposConfig, log: Logger) => SoftwareMasterLink;
}

export async function runSoftwareCommand(deps: SoftwareCommandDeps, options: SoftwareCommandOptions): Promise<number> {
  const { config } = deps;
  const log = deps.log.child({ loop: 'software' });
  const slapos = requireKeys(config, 'slapos', ['computer_id', 'master_url', 'software_root', 'instance_root']);
  const force = Boolean(options.all || options.force);
  if (options.all && options.onlySr !== undefined) throw new UsageError('--all and --only-sr cannot be used together');
  const cache = cacheSettings(config);
  // As the reference: a configured key or TLS file that is missing stops the run before any work.
  for (const file of configuredFiles(cache)) if (!existsSync(file)) throw new UsageError(`[networkcache] File ${JSON.stringify(file)} does not exist.`);
  await randomStartDelay(slapos.maximal_delay, options.now, log);
  return withPidFile(slapos.pidfile_software, log, async () => {
    // As the reference: the supervisord configuration exists once software runs (not launched here).
    writeSupervisordConfiguration(slapos.instance_root, watchdogOptions(config));
    const link: SoftwareMasterLink = (deps.link ?? connectSoftwareMaster)(config, log);
    // Progress on stderr, beside the log: stdout stays the command's output.
    const progress = new BuildProgress(new ProgressLine(process.stderr, progressMode(process.stderr, Boolean(options.json))));
    const { exitCode, summary } = await processSoftwareReleases(link, {
      softwareRoot: slapos.software_root,
      instanceRoot: slapos.instance_root,
      buildoutCommand: buildoutCommand(slapos.buildout),
      user: softwareUser(slapos.software_root),
      minFreeSpace: slapos.software_min_free_space,
      sharedPartList: slapos.shared_part_list,
      buildTimePartList: slapos.build_time_part_list,
      force,
      onlySr: parseOnlySr(options.onlySr),
      garbageCollect: Boolean(options.garbageCollect),
      buildoutDebug: Boolean(options.buildoutDebug),
      progress,
      log,
      cache,
    });
    if (options.json) deps.out(JSON.stringify(summary, null, 2));
    const failed = summary.failed.map((f) => f.url).join(', ');
    log.info(
      { installed: summary.installed.length, up_to_date: summary.upToDate.length, destroyed: summary.destroyed.length,
        failed: summary.failed.length, ...(failed ? { failed_releases: failed } : {}) },
      'software:',
    );
    return exitCode === 0 ? Exit.SUCCESS : Exit.FAILURE;
  });
}
