// The daemon's scheduler: each loop runs on its cron schedule and on events,
// never concurrently with itself. A scheduled run that comes while the loop is
// running is skipped (as a systemd timer does for an active service); an event
// that comes while it runs queues exactly one more run, so a bang written in
// the middle of an instance pass is never lost and a burst of bangs costs one
// extra pass. The decisions are the pure functions onTrigger/onFinish.
import { Cron } from 'croner';
import type { Logger } from '../../util/log.js';
import type { NodeMetrics } from '../metrics.js';

export type RunReason = 'schedule' | 'event';

export interface LoopRun {
  reason: RunReason;
  /** Aborted when the daemon stops: a loop should stop its child process. */
  signal: AbortSignal;
}

/** One entry of the loop registry. */
export interface LoopSpec {
  name: string;
  /** croner expression; undefined or empty: runs only on events. */
  schedule?: string | undefined;
  /** Runs one pass; resolves with the loop's exit status (0 success, 10 already running, …). */
  run: (run: LoopRun) => Promise<number>;
}

export interface LoopState {
  running: boolean;
  pending: boolean;
}

export type TriggerDecision = 'start' | 'queue' | 'skip';

export function onTrigger(state: LoopState, reason: RunReason): { state: LoopState; decision: TriggerDecision } {
  if (!state.running) return { state: { running: true, pending: false }, decision: 'start' };
  if (reason === 'event') return { state: { running: true, pending: true }, decision: 'queue' };
  return { state, decision: 'skip' };
}

export function onFinish(state: LoopState): { state: LoopState; again: boolean } {
  if (state.pending) return { state: { running: true, pending: false }, again: true };
  return { state: { running: false, pending: false }, again: false };
}

/** Throws an Error naming the loop if its schedule is not a valid cron expression. */
export function checkSchedule(name: string, schedule: string): void {
  try {
    new Cron(schedule, { paused: true }).stop();
  } catch (error) {
    throw new Error(`schedule of loop ${name} ("${schedule}"): ${(error as Error).message}`);
  }
}

export interface SchedulerOptions {
  log: Logger;
  metrics: NodeMetrics;
  /** Events within this window start one run (ms). */
  debounceMs?: number;
}

export class Scheduler {
  private readonly loops = new Map<string, LoopSpec>();
  private readonly states = new Map<string, LoopState>();
  private readonly debounce = new Map<string, NodeJS.Timeout>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly crons: Cron[] = [];
  private readonly abort = new AbortController();
  private stopped = false;

  constructor(loops: LoopSpec[], private readonly options: SchedulerOptions) {
    for (const loop of loops) {
      if (this.loops.has(loop.name)) throw new Error(`loop ${loop.name} is registered twice`);
      this.loops.set(loop.name, loop);
      this.states.set(loop.name, { running: false, pending: false });
    }
  }

  /** Starts the cron schedules (validated first, so a bad one stops the daemon at start). */
  start(): void {
    for (const loop of this.loops.values()) {
      if (!loop.schedule) continue;
      checkSchedule(loop.name, loop.schedule);
    }
    for (const loop of this.loops.values()) {
      if (!loop.schedule) continue;
      this.crons.push(new Cron(loop.schedule, { name: `slapos-${loop.name}` }, () => this.trigger(loop.name, 'schedule')));
      this.options.log.info({ loop: loop.name, schedule: loop.schedule }, 'loop scheduled');
    }
  }

  isRunning(name: string): boolean {
    return this.states.get(name)?.running ?? false;
  }

  /** Asks for a run of `name`; events are debounced. */
  trigger(name: string, reason: RunReason): void {
    if (this.stopped) return;
    const loop = this.loops.get(name);
    if (!loop) throw new Error(`no loop named ${name}`);
    if (reason === 'event' && (this.options.debounceMs ?? 0) > 0) {
      if (this.debounce.has(name)) return;
      this.debounce.set(name, setTimeout(() => {
        this.debounce.delete(name);
        this.decide(loop, 'event');
      }, this.options.debounceMs));
      return;
    }
    this.decide(loop, reason);
  }

  private decide(loop: LoopSpec, reason: RunReason): void {
    if (this.stopped) return;
    const { state, decision } = onTrigger(this.states.get(loop.name) as LoopState, reason);
    this.states.set(loop.name, state);
    if (decision === 'start') this.launch(loop, reason);
    else if (decision === 'skip') {
      this.options.metrics.loopSkipped.inc({ loop: loop.name });
      this.options.log.debug({ loop: loop.name }, 'loop still running, scheduled run skipped');
    } else this.options.log.debug({ loop: loop.name, reason }, 'loop still running, one more run queued');
  }

  private launch(loop: LoopSpec, reason: RunReason): void {
    const done = this.execute(loop, reason).finally(() => this.inflight.delete(done));
    this.inflight.add(done);
  }

  private async execute(loop: LoopSpec, reason: RunReason): Promise<void> {
    const { log, metrics } = this.options;
    for (let current = reason; ;) {
      metrics.loopRunning.set({ loop: loop.name }, 1);
      const started = performance.now();
      log.info({ loop: loop.name, reason: current }, 'loop run started');
      let status: number;
      try {
        status = await loop.run({ reason: current, signal: this.abort.signal });
      } catch (error) {
        log.error({ code: 'LOOP_FAILED', loop: loop.name, err: error }, 'loop failed');
        status = 1;
      }
      const seconds = (performance.now() - started) / 1000;
      metrics.recordRun(loop.name, seconds, status);
      metrics.loopRunning.set({ loop: loop.name }, 0);
      (status === 0 || status === 10 ? log.info : log.warn).call(log, `loop ${loop.name}: run ended with status ${status} after ${seconds.toFixed(1)} s`);
      const next = onFinish(this.states.get(loop.name) as LoopState);
      this.states.set(loop.name, this.stopped ? { running: false, pending: false } : next.state);
      if (!next.again || this.stopped) return;
      current = 'event';
    }
  }

  /** Stops the schedules and events, aborts the running loops and waits for them. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const cron of this.crons) cron.stop();
    for (const timer of this.debounce.values()) clearTimeout(timer);
    this.debounce.clear();
    this.abort.abort();
    await Promise.allSettled([...this.inflight]);
  }
}
