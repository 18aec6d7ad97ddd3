// Load generator of the master-scale benchmark, run as its own process (so
// that its CPU is measured apart from the master's): simulated computers send
// the request mix of our node's loops, open loop (each request at its planned
// time, whether earlier answers came back or not), each on a fresh connection
// as a pass of `slapos node instance` (a new process) opens one.
// Input: one JSON argument (LoadPlan); output: one JSON line (LoadResult).
import http from 'node:http';
import { clientSchedule, computerSchedule, type LoadPlan, type Planned } from './master-scale-plan.js';

export interface EndpointStats { count: number; errors: number; latencies: number[]; firstError?: string }
export interface LoadResult {
  endpoints: Record<string, EndpointStats>;
  /** ms the generator sent requests after their planned time (its own lag), p99 and max. */
  lagP99: number;
  lagMax: number;
  cpuMs: number;
  warmupMs: number;
  warmupErrors: number;
}

let gzip = false;

function send(base: URL, r: Planned): Promise<{ ms: number; error?: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const body = r.body ?? '';
    const req = http.request({
      host: base.hostname, port: base.port, path: r.path, method: r.method, agent: false,
      headers: {
        ...(r.method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {}),
        // Our node's client (src/slap/client.ts) sends no Accept-Encoding; the reference's (requests) accepts gzip.
        ...(gzip ? { 'accept-encoding': 'gzip' } : {}),
      },
    }, (res) => {
      res.on('data', () => undefined);
      res.on('end', () => {
        const ms = performance.now() - started;
        const status = res.statusCode ?? 0;
        resolve(status >= 200 && status < 400 ? { ms } : { ms, error: `HTTP ${status}` });
      });
      res.on('error', (error) => resolve({ ms: performance.now() - started, error: error.message }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timeout after 30 s')));
    req.on('error', (error) => resolve({ ms: performance.now() - started, error: error.message }));
    req.end(body);
  });
}

/** Every computer's answer rendered once (the master's cache warm, as after its first minute), `concurrency` at a time. */
async function warmup(base: URL, plan: LoadPlan): Promise<{ ms: number; errors: number }> {
  const started = performance.now();
  let next = 0;
  let errors = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < plan.computers) {
      const c = next++;
      const result = await send(base, { at: 0, endpoint: 'getFullComputerInformation', method: 'GET', path: `/getFullComputerInformation?computer_id=COMP-${c}` });
      if (result.error) errors++;
    }
  }));
  return { ms: performance.now() - started, errors };
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.argv[2] ?? '{}') as LoadPlan;
  gzip = plan.gzip === true;
  const bases = plan.urls.map((u) => new URL(u));
  // Each master warms its own cache.
  let warmupMs = 0;
  let warmupErrors = 0;
  for (const base of bases) {
    const w = await warmup(base, plan);
    warmupMs += w.ms;
    warmupErrors += w.errors;
  }
  // The planned requests of the window, sorted by time.
  const planned: Planned[] = [];
  for (let c = 0; c < plan.computers; c++) planned.push(...computerSchedule(plan, c));
  for (let u = 0; u < plan.clients; u++) planned.push(...clientSchedule(plan, u));
  planned.sort((a, b) => a.at - b.at);
  // Tells the benchmark to take the masters' CPU counters now.
  process.stdout.write('window\n');
  const cpu0 = process.cpuUsage();
  const endpoints: Record<string, EndpointStats> = {};
  const lags: number[] = [];
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  let i = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now() - t0;
      for (; i < planned.length && planned[i]!.at <= now; i++) {
        const r = planned[i]!;
        lags.push(now - r.at);
        const stats = (endpoints[r.endpoint] ??= { count: 0, errors: 0, latencies: [] });
        // Computers are spread over the masters as a load balancer would (by computer).
        const base = bases[(r.computer ?? 0) % bases.length]!;
        pending.push(send(base, r).then((result) => {
          stats.count++;
          stats.latencies.push(result.ms);
          if (result.error) {
            stats.errors++;
            stats.firstError ??= result.error;
          }
        }));
      }
      if (i >= planned.length) resolve();
      else setTimeout(tick, Math.max(0, Math.min(5, planned[i]!.at - (performance.now() - t0))));
    };
    tick();
  });
  await Promise.all(pending);
  const cpu = process.cpuUsage(cpu0);
  lags.sort((a, b) => a - b);
  const result: LoadResult = {
    endpoints, lagP99: lags[Math.floor(lags.length * 0.99)] ?? 0, lagMax: lags.at(-1) ?? 0,
    cpuMs: (cpu.user + cpu.system) / 1000, warmupMs, warmupErrors,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
