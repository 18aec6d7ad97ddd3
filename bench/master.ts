// Master load benchmark (not a test): a synthetic fleet polling
// getFullComputerInformation on loopback, against `slapos proxy start` in a
// child process, with autocannon as the load generator. For each engine:
// the saturation throughput, then latency at a fixed rate (the fleet's
// polling rate). Options: --computers N --partitions M --busy F (fraction
// allocated) --duration S --connections C --rate R --engine sqlite|pg|both.
import autocannon from 'autocannon';
import { execa } from 'execa';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { dictToInstanceXml } from '../src/slap/instance-xml.js';
import { loadComputer, nextTimestamp } from '../src/master/node-ops.js';
import { PgStore } from '../src/master/pg-store.js';
import { SqliteStore } from '../src/master/sqlite-store.js';
import type { Store } from '../src/master/store.js';
import { postgresMissing, startPostgres } from '../test/helpers/postgres.js';
import { freePort, waitListening } from '../test/helpers/proxy-process.js';

interface Options {
  computers: number; partitions: number; busy: number; duration: number; connections: number; rate: number; engine: string;
  /** Concurrent writes per second (softwareInstanceBang on random computers): they invalidate cached answers. */
  writes: number;
}

function parse(args: string[]): Options {
  const o: Options = { computers: 1000, partitions: 100, busy: 0.5, duration: 10, connections: 10, rate: 170, engine: 'both', writes: 10 };
  for (let i = 0; i < args.length; i += 2) {
    const key = (args[i] ?? '').replace(/^--/, '') as keyof Options;
    if (!(key in o)) throw new Error(`unknown option ${args[i]}`);
    (o as unknown as Record<string, unknown>)[key] = key === 'engine' ? args[i + 1] : Number(args[i + 1]);
  }
  return o;
}

const SR = 'https://lab.example.com/software/bench/software.cfg';

/** Formats the fleet and allocates a fraction of every computer's partitions (direct store writes: fast). */
async function populate(store: Store, o: Options): Promise<void> {
  for (let c = 0; c < o.computers; c += 1) {
    const id = `COMP-${c}`;
    await store.transaction(async (tx) => {
      await loadComputer(tx, {
        reference: id, address: `10.${c >> 8}.${c & 255}.1`, netmask: '255.255.255.0',
        partition_list: Array.from({ length: o.partitions }, (_, p) => ({
          reference: `slappart${p}`, tap: { name: `slaptap${p}` },
          address_list: [{ addr: `10.${c >> 8}.${c & 255}.${p + 2}`, netmask: '255.255.255.0' }, { addr: `fd00::${c.toString(16)}:${p.toString(16)}`, netmask: 'ffff:ffff:ffff:ffff::' }],
        })),
      });
      await tx.upsertSoftware(SR, id, 'available');
      const busy = Math.floor(o.partitions * o.busy);
      for (let p = 0; p < busy; p += 1) {
        await tx.updatePartition(id, `slappart${p}`, {
          slap_state: 'busy', software_release: SR, software_type: 'default', partition_reference: `inst-${c}-${p}`,
          requested_by: p === 0 ? '' : `inst-${c}-0`, requested_state: 'started', timestamp: nextTimestamp(null),
          xml: dictToInstanceXml({ 'frontend-url': `https://f${p}.example.com`, 'ram-size': '2048' }),
        });
      }
    });
  }
}

/** Background writers: a bang re-processes a tree, so that computer's next answer is rendered afresh. */
function writeLoad(url: string, o: Options) {
  let n = 0;
  return autocannon({
    url, connections: 2, duration: o.duration, overallRate: o.writes,
    requests: [{
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      setupRequest: (req) => ({ ...req, path: '/softwareInstanceBang', body: `computer_id=COMP-${(n++ * 104729) % o.computers}&computer_partition_id=slappart0&message=bench` }),
    }],
  });
}

async function runLoad(url: string, o: Options, rate?: number) {
  let n = 0;
  const writes = o.writes > 0 ? writeLoad(url, o) : undefined;
  const result = await autocannon({
    url, connections: o.connections, duration: o.duration, ...(rate ? { overallRate: rate } : {}),
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: `/getFullComputerInformation?computer_id=COMP-${(n++ * 7919) % o.computers}` }) }],
  });
  const written = await writes;
  return {
    writes: written ? `${Math.round(written.requests.average)} writes/s (p99 ${written.latency.p99} ms, ${written.non2xx + written.errors} errors)` : 'no writes',
    rps: Math.round(result.requests.average), p50: result.latency.p50, p99: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx, kbPerReq: Math.round(result.throughput.average / Math.max(1, result.requests.average) / 1024),
  };
}

async function benchEngine(engine: 'sqlite' | 'pg', o: Options, dir: string): Promise<void> {
  let uri = path.join(dir, `${engine}.db`);
  let stopPg: (() => Promise<void>) | undefined;
  if (engine === 'pg') {
    const missing = postgresMissing();
    if (missing) {
      process.stdout.write(`pg: skipped (${missing})\n`);
      return;
    }
    const server = await startPostgres();
    stopPg = () => server.stop();
    uri = await server.createDatabase('bench');
  }
  try {
    const started = Date.now();
    const store = engine === 'pg' ? await PgStore.open(uri) : new SqliteStore(uri);
    await populate(store, o);
    await store.close();
    process.stdout.write(`${engine}: fleet of ${o.computers} computers x ${o.partitions} partitions (${Math.round(o.busy * 100)}% allocated) loaded in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    const port = await freePort();
    const cfg = path.join(dir, `${engine}.cfg`);
    writeFileSync(cfg, `[slapos]\ncomputer_id = COMP-0\n[slapproxy]\nhost = 127.0.0.1\nport = ${port}\ndatabase_uri = ${uri}\n`);
    const master = execa('node', [path.resolve('bin/slapos.js'), 'proxy', 'start', '--cfg', cfg], { reject: false, all: true });
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitListening(master, `${url}/metrics`);
      await runLoad(url, { ...o, duration: 2, writes: 0 }); // warm-up
      const max = await runLoad(url, o);
      process.stdout.write(`${engine}: saturation, ${o.connections} connections: ${max.rps} req/s, p50 ${max.p50} ms, p99 ${max.p99} ms, ${max.errors} errors, ~${max.kbPerReq} KiB/answer; ${max.writes}\n`);
      const fixed = await runLoad(url, o, o.rate);
      process.stdout.write(`${engine}: fixed rate ${o.rate} req/s: ${fixed.rps} req/s, p50 ${fixed.p50} ms, p99 ${fixed.p99} ms, ${fixed.errors} errors; ${fixed.writes}\n`);
    } finally {
      master.kill('SIGTERM');
      await master;
    }
  } finally {
    await stopPg?.();
  }
}

export async function main(args: string[]): Promise<void> {
  const o = parse(args);
  process.stdout.write(`machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}\n`);
  const dir = mkdtempSync(path.join(tmpdir(), 'slapos-bench-'));
  try {
    for (const engine of o.engine === 'both' ? (['sqlite', 'pg'] as const) : [o.engine as 'sqlite' | 'pg']) await benchEngine(engine, o, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
