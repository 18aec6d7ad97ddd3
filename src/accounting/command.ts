// `slapos node collect` and `slapos node report` from configuration to exit
// status: settings, pid file, random delay, master client, JSON summary.
// Collect runs every minute and never talks to the master: the report and
// the HTTP client (undici, saxes, execa) are imported by report only.
import path from 'node:path';
import { requireKeys, type SlaposConfig } from '../config/load.js';
import { Exit } from '../util/exit-status.js';
import { watchdogOptions } from '../supervisor/config.js';
import type { SlapClient } from '../slap/client.js';
import type { Logger } from '../util/log.js';
import { randomStartDelay, withPidFile } from '../util/loop-start.js';
import { runCollect } from './collect.js';
import { accountingSettings } from './settings.js';

export interface AccountingDeps {
  config: SlaposConfig;
  log: Logger;
  out(text: string): void;
  client?: SlapClient;
}

export async function runCollectCommand(loopDeps: AccountingDeps, options: { json?: boolean }): Promise<number> {
  const deps = { ...loopDeps, log: loopDeps.log.child({ loop: 'collect' }) };
  const settings = accountingSettings(deps.config, (m) => deps.log.warn(m));
  const pidFile = path.join(settings.instanceRoot, 'var', 'accounting', 'collect.pid');
  return withPidFile(pidFile, deps.log, async () => {
    const result = await runCollect({ settings, log: deps.log });
    if (options.json) deps.out(JSON.stringify({ at: result.at, samples: result.samples, diskMeasured: result.diskMeasured, hardwareStatusFile: result.hardwareStatusFile }, null, 2));
    return Exit.SUCCESS;
  });
}

export async function runReportCommand(loopDeps: AccountingDeps, options: { now?: boolean; json?: boolean }): Promise<number> {
  const deps = { ...loopDeps, log: loopDeps.log.child({ loop: 'report' }) };
  const slapos = requireKeys(deps.config, 'slapos', ['computer_id', 'master_url', 'instance_root']);
  const settings = accountingSettings(deps.config, (m) => deps.log.warn(m));
  await randomStartDelay(slapos.maximal_delay, options.now, deps.log);
  const [{ runReport }, { slapClientFromConfig }] = await Promise.all([import('./report.js'), import('../slap/connect.js')]);
  return withPidFile(slapos.pidfile_report, deps.log, async () => {
    const client = deps.client ?? slapClientFromConfig(deps.config);
    try {
      const { createManagers } = await import('../managers/create.js');
      const { exitCode, summary } = await runReport({
        settings, client, log: deps.log, watchdog: watchdogOptions(deps.config), managers: await createManagers(deps.config, deps.log),
      });
      if (options.json) deps.out(JSON.stringify(summary, null, 2));
      return exitCode === 0 ? Exit.SUCCESS : Exit.FAILURE;
    } finally {
      if (!deps.client) await client.close();
    }
  });
}
