// `slapos node daemon`: the loops on their schedules in one process, an
// instance pass at once on file events, /metrics. systemd (or any supervisor)
// restarts the process if it dies; SIGTERM stops it cleanly.
import { setTimeout as sleep } from 'node:timers/promises';
import type { SlaposConfig } from '../../config/load.js';
import type { Logger } from '../../util/log.js';
import { nodeMetrics, serveMetrics, type NodeMetrics } from '../metrics.js';
import { registerPartitionUsage } from '../partition-metrics.js';
import { nodeLoops } from './loops.js';
import { Scheduler, type LoopSpec } from './scheduler.js';
import { NodeWatcher, type EventKind, type FileEvent } from './watch.js';

/** Which loop an event asks for. */
export const EVENT_LOOP: Record<EventKind, string> = { bang: 'instance', request: 'instance', software_completed: 'instance' };

export interface DaemonOptions {
  configFile: string;
  config: SlaposConfig;
  log: Logger;
  metrics?: NodeMetrics;
  /** Tests give a fake registry; by default nodeLoops(). */
  loops?: LoopSpec[];
  debounceMs?: number;
  /** Bound on waiting for running loops at stop, before exiting anyway (their children are killed). */
  stopGraceMs?: number;
  childArgs?: string[];
}

export interface RunningDaemon {
  scheduler: Scheduler;
  watcher: NodeWatcher | undefined;
  metricsPort: number | undefined;
  stop(): Promise<void>;
}

export async function startDaemon(options: DaemonOptions): Promise<RunningDaemon> {
  const { config, log } = options;
  const metrics = options.metrics ?? nodeMetrics();
  const loops = options.loops ?? nodeLoops({
    configFile: options.configFile, config, log, metrics, ...(options.childArgs ? { childArgs: options.childArgs } : {}),
  });
  const scheduler = new Scheduler(loops, { log, metrics, debounceMs: options.debounceMs ?? 500 });
  scheduler.start();

  let watcher: NodeWatcher | undefined;
  const instanceRoot = config.slapos.instance_root;
  if (config.daemon.watch && instanceRoot) {
    const known = new Set(loops.map((l) => l.name));
    watcher = new NodeWatcher({ instanceRoot, softwareRoot: config.slapos.software_root }, (event: FileEvent) => {
      if (!event.repeat) {
        metrics.events.inc({ kind: event.kind });
        log.info({ kind: event.kind, path: event.path }, 'file event');
      }
      const loop = EVENT_LOOP[event.kind];
      if (known.has(loop)) scheduler.trigger(loop, 'event');
    }, log);
    watcher.start();
    log.info({ instance_root: instanceRoot, ...(config.slapos.software_root ? { software_root: config.slapos.software_root } : {}), directories: watcher.watchCount }, 'watching');
  }

  let server: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  if (config.daemon.metrics_port > 0 && instanceRoot) registerPartitionUsage(metrics.registry, instanceRoot);
  if (config.daemon.metrics_port > 0) {
    try {
      server = await serveMetrics(metrics, config.daemon.metrics_host, config.daemon.metrics_port);
    } catch (error) {
      await scheduler.stop();
      watcher?.close();
      throw new Error(`[daemon] metrics_port: cannot listen on ${config.daemon.metrics_host}:${config.daemon.metrics_port}: ${(error as Error).message}`);
    }
    log.info({ url: `http://${config.daemon.metrics_host}:${server.port}/metrics` }, 'metrics');
  }

  return {
    scheduler,
    watcher,
    metricsPort: server?.port,
    async stop() {
      watcher?.close();
      const grace = options.stopGraceMs ?? 60_000;
      const timer = new AbortController();
      const stopped = scheduler.stop().then(() => true);
      const late = sleep(grace, false, { signal: timer.signal }).catch(() => false);
      if (!(await Promise.race([stopped, late]))) log.warn({ code: 'STOP_TIMEOUT', grace_s: grace / 1000 }, 'loops still running after the grace period: exiting anyway');
      timer.abort(); // or the pending timer keeps the process alive for the whole grace period
      await server?.close();
    },
  };
}

/** Runs until SIGTERM or SIGINT; returns the exit status. */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  const daemon = await startDaemon(options);
  options.log.info('slapos node daemon started');
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  options.log.info({ signal }, 'stopping (waiting for running loops)');
  await daemon.stop();
  options.log.info('slapos node daemon stopped');
  return 0;
}
