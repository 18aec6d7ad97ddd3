// /metrics in Prometheus text format (prom-client, one registry per master so
// several masters in one process, as in tests, do not share series).
// Request counts and latency are per process; computers, partitions and
// stored usage reports are read from the database at scrape time, so every
// master behind a load balancer reports the same fleet figures.
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Authorize } from './authorize.js';
import type { Store } from './store.js';
import { projectVersion } from '../util/version.js';

export class MasterMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'slapos_master_requests_total', help: 'HTTP requests answered, by endpoint (route) and status code',
    labelNames: ['endpoint', 'status'] as const, registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'slapos_master_request_duration_seconds', help: 'Time to answer a request, by endpoint (route)',
    labelNames: ['endpoint'] as const, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly usageReceived = new Counter({
    name: 'slapos_master_usage_reports_received_total', help: 'useComputer reports accepted by this process',
    registers: [this.registry],
  });
  private readonly computers = new Gauge({ name: 'slapos_master_computers', help: 'Registered computers', registers: [this.registry] });
  private readonly partitions = new Gauge({
    name: 'slapos_master_partitions', help: 'Partitions by allocation (free/busy) and requested state',
    labelNames: ['slap_state', 'requested_state'] as const, registers: [this.registry],
  });
  private readonly usageStored = new Gauge({ name: 'slapos_master_usage_reports_stored', help: 'Usage reports in the database', registers: [this.registry] });
  /** Always 1: the label says which slapos-node (package.json's version) answers. */
  readonly buildInfo = new Gauge({
    name: 'slapos_master_build_info', help: 'The running slapos-node version (label), always 1', labelNames: ['version'] as const, registers: [this.registry],
  });

  constructor() {
    this.buildInfo.set({ version: projectVersion() }, 1);
  }

  async refresh(store: Store): Promise<void> {
    const counts = await store.read(async (tx) => ({
      computers: await tx.countComputers(), partitions: await tx.countPartitions(), usage: await tx.countUsage(),
    }));
    this.computers.set(counts.computers);
    this.partitions.reset();
    for (const p of counts.partitions) this.partitions.set({ slap_state: p.slap_state, requested_state: p.requested_state }, p.count);
    this.usageStored.set(counts.usage);
  }
}

export function registerMetrics(app: FastifyInstance, store: Store, metrics: MasterMetrics, authorize: Authorize): void {
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, never the raw URL: bounded label cardinality.
    const endpoint = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ endpoint, status: String(reply.statusCode) });
    metrics.latency.observe({ endpoint }, reply.elapsedTime / 1000);
  });
  app.get('/metrics', async (request, reply) => {
    await authorize(request, { kind: 'user' });
    await metrics.refresh(store);
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}
