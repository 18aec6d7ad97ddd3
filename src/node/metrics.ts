// The node's metrics, one registry per process, read at /metrics by the
// daemon. Loops that run in the daemon's process set the partition gauges
// through the small functions below; loops run as child processes are seen
// only through their duration and exit status (recorded by the scheduler).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type LoopResult = 'success' | 'failure' | 'already_running';

export class NodeMetrics {
  readonly registry = new Registry();
  readonly loopRuns = new Counter({
    name: 'slapos_node_loop_runs_total', help: 'Finished runs of each loop, by result (success, failure, already_running)',
    labelNames: ['loop', 'result'] as const, registers: [this.registry],
  });
  readonly loopFailures = new Counter({
    name: 'slapos_node_loop_failures_total', help: 'Runs of each loop that ended with a non-zero exit status other than 10',
    labelNames: ['loop'] as const, registers: [this.registry],
  });
  readonly loopDuration = new Histogram({
    name: 'slapos_node_loop_duration_seconds', help: 'Duration of loop runs',
    labelNames: ['loop'] as const, buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14_400], registers: [this.registry],
  });
  readonly loopRunning = new Gauge({
    name: 'slapos_node_loop_running', help: '1 while a run of the loop is going on', labelNames: ['loop'] as const, registers: [this.registry],
  });
  readonly loopLastExit = new Gauge({
    name: 'slapos_node_loop_last_exit_status', help: 'Exit status of the last run of each loop', labelNames: ['loop'] as const, registers: [this.registry],
  });
  readonly loopLastSuccess = new Gauge({
    name: 'slapos_node_loop_last_success_timestamp_seconds', help: 'Unix time of the last successful run of each loop',
    labelNames: ['loop'] as const, registers: [this.registry],
  });
  readonly loopSkipped = new Counter({
    name: 'slapos_node_loop_skipped_total', help: 'Scheduled runs skipped because the previous run was still going on',
    labelNames: ['loop'] as const, registers: [this.registry],
  });
  readonly events = new Counter({
    name: 'slapos_node_events_total', help: 'File events that asked for a run (bang, request, software_completed)',
    labelNames: ['kind'] as const, registers: [this.registry],
  });
  readonly partitions = new Gauge({
    name: 'slapos_node_partitions', help: 'Partitions by state, as last seen by the instance loop', labelNames: ['state'] as const, registers: [this.registry],
  });
  readonly backoff = new Gauge({
    name: 'slapos_node_partition_backoff_seconds', help: 'Seconds a failing partition waits before its next attempt (0: none)',
    labelNames: ['partition'] as const, registers: [this.registry],
  });
  readonly promiseFailures = new Counter({
    name: 'slapos_node_promise_failures_total', help: 'Failed promise runs, by partition', labelNames: ['partition'] as const, registers: [this.registry],
  });

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'slapos_node_' });
  }

  recordRun(loop: string, seconds: number, exitCode: number): void {
    const result: LoopResult = exitCode === 0 ? 'success' : exitCode === 10 ? 'already_running' : 'failure';
    this.loopRuns.inc({ loop, result });
    if (result === 'failure') this.loopFailures.inc({ loop });
    if (result === 'success') this.loopLastSuccess.set({ loop }, Date.now() / 1000);
    this.loopDuration.observe({ loop }, seconds);
    this.loopLastExit.set({ loop }, exitCode);
  }

  /** Replaces the partition counts (e.g. { started: 12, stopped: 3, error: 1 }). */
  setPartitionStates(counts: Record<string, number>): void {
    this.partitions.reset();
    for (const [state, count] of Object.entries(counts)) this.partitions.set({ state }, count);
  }

  setBackoff(partition: string, seconds: number): void {
    if (seconds > 0) this.backoff.set({ partition }, seconds);
    else this.backoff.remove({ partition });
  }

  countPromiseFailure(partition: string, failures = 1): void {
    this.promiseFailures.inc({ partition }, failures);
  }
}

let shared: NodeMetrics | undefined;

/** The process-wide metrics that in-process loops report to (created on first use). */
export function nodeMetrics(): NodeMetrics {
  shared ??= new NodeMetrics();
  return shared;
}

/** Serves GET /metrics; resolves once listening, with the bound port. */
export async function serveMetrics(metrics: NodeMetrics, host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      (error: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
