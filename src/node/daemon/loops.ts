// The daemon's loop registry: what each loop runs and when.
//
// Software runs in the daemon's process (runSoftwareCommand). Instance,
// report and collect run as `slapos node <loop>` child processes: each pass
// gets a fresh process (a leak or a crash in one pass cannot take the daemon
// down), and they take the same pid files as the systemd timers' runs, so the
// two can never overlap. To run one in-process instead, replace its
// `childLoop(...)` with a call shaped like the software entry, and let it
// report partition states, backoffs and promise failures through `metrics`
// (src/node/metrics.ts: setPartitionStates, setBackoff, countPromiseFailure).
import { execa } from '../../vendor/execa.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type SlaposConfig } from '../../config/load.js';
import { runSoftwareCommand } from '../../software/command.js';
import type { Logger } from '../../util/log.js';
import type { NodeMetrics } from '../metrics.js';
import type { LoopRun, LoopSpec } from './scheduler.js';

/** bin/slapos.js of this installation (dist/src/node/daemon → repository root). */
export const SLAPOS_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'bin', 'slapos.js');

/** How long a loop child gets between SIGTERM and SIGKILL when the daemon stops. */
const KILL_GRACE_MS = 30_000;

export interface LoopContext {
  configFile: string;
  config: SlaposConfig;
  log: Logger;
  metrics: NodeMetrics;
  /** Global options to pass on to child loops (-v, --log-file). */
  childArgs?: string[];
}

/**
 * `slapos node <args…>` as a child of the daemon: same configuration file, its
 * output on the daemon's (the journal), SIGTERM then SIGKILL when the daemon stops.
 * `nowOnEvent`: event runs skip maximal_delay (scheduled runs keep it, as cron lines do).
 */
export function childLoop(ctx: LoopContext, args: string[], nowOnEvent = true): (run: LoopRun) => Promise<number> {
  return async ({ reason, signal }) => {
    const argv = [SLAPOS_BIN, 'node', ...args, '--cfg', ctx.configFile, ...(ctx.childArgs ?? [])];
    if (nowOnEvent && reason === 'event') argv.push('--now');
    const result = await execa(process.execPath, argv, {
      stdio: ['ignore', 'inherit', 'inherit'], reject: false, cancelSignal: signal, forceKillAfterDelay: KILL_GRACE_MS,
    });
    if (result.isCanceled) return 1;
    return result.exitCode ?? 1;
  };
}

/**
 * The configuration as it is now: each run sees edits of slapos.cfg, as runs
 * started by timers do. A file that became invalid keeps the last good one.
 */
function reloader(ctx: LoopContext): () => SlaposConfig {
  let last = ctx.config;
  return () => {
    try {
      last = loadConfig(ctx.configFile);
    } catch (error) {
      ctx.log.error({ code: 'CONFIG_RELOAD_FAILED', err: error }, 'configuration not reloaded; using the one read before');
    }
    return last;
  };
}

export function nodeLoops(ctx: LoopContext): LoopSpec[] {
  const schedules = ctx.config.daemon;
  const reload = reloader(ctx);
  return [
    {
      name: 'software',
      schedule: schedules.software_schedule,
      run: ({ reason }) => runSoftwareCommand({ config: reload(), log: ctx.log, out: () => undefined }, { now: reason === 'event' }),
    },
    { name: 'instance', schedule: schedules.instance_schedule, run: childLoop(ctx, ['instance']) },
    { name: 'report', schedule: schedules.report_schedule, run: childLoop(ctx, ['report']) },
    // collect has no random delay (and no --now option).
    { name: 'collect', schedule: schedules.collect_schedule, run: childLoop(ctx, ['collect'], false) },
  ];
}
