// SQLite transactions, promise-wrapped against synchronous (issue 30), in one
// process: `npm run bench -- master-tx [--computers 2000] [--rounds 8] [--requests 5000]`.
// Two masters (buildMaster, in-process, fastify inject: no sockets, so the
// figure is the master's own work) on the same database, one per design
// (SLAPOS_MASTER_SQLITE_TX), are sent the same mix as master-scale's
// computers (bench/master-scale-plan.ts: getFullComputerInformation hits,
// partition reports, connection publications that invalidate the answer,
// usage journals) in alternating rounds, 8 in flight. Printed: process CPU
// (user + system) per request per round and the medians; CPU time, not wall
// time, so that other processes' load weighs less.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { dumps } from '../src/slap/marshal-encode.js';
import { buildMaster } from '../src/master/server.js';
import { SqliteStore } from '../src/master/sqlite-store.js';
import { header, loadLine, median, parseArgs } from './lib.js';
import { populate } from './master-scale-fill.js';
import { SOFTWARE_URL, usageJournal } from './master-scale-plan.js';

const PARTITIONS = 20;
const BUSY = 10;

type Design = 'async' | 'sync';

async function build(file: string, design: Design): Promise<FastifyInstance> {
  // registerRoutes reads the switch once, when the routes are registered.
  process.env.SLAPOS_MASTER_SQLITE_TX = design;
  try {
    // inject's sockets have no ports: the bench gives them some, and the caller is root (as the node).
    const app = await buildMaster({ store: new SqliteStore(file), defaultComputer: 'COMP-0', logger: false, localPeers: { tcpSocketUid: () => 0 } });
    app.addHook('onRequest', async (request) => {
      Object.assign(request.raw.socket, { localAddress: '127.0.0.1', localPort: 1, remotePort: 2 });
    });
    return app;
  } finally {
    delete process.env.SLAPOS_MASTER_SQLITE_TX;
  }
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

/** Request i of a round: mostly polls, and the mix's writes at master-scale's proportions (day compressed 10×). */
function request(i: number, round: number, computers: number): { method: 'GET' | 'POST'; url: string; payload?: string } {
  const c = (i * 7919 + round + computers) % computers;
  const id = `COMP-${c}`;
  const partition = `slappart${i % BUSY}`;
  if (i % 20 === 7) return { method: 'POST', url: '/startedComputerPartition', payload: form({ computer_id: id, computer_partition_id: partition }) };
  if (i % 40 === 13) {
    const connection = dumps({ 'url-ipv6': `http://[fd00::${c.toString(16)}:1]:8080/`, changed: `${round}-${i}` });
    return { method: 'POST', url: '/setComputerPartitionConnectionXml', payload: form({ computer_id: id, computer_partition_id: partition, connection_xml: connection }) };
  }
  if (i % 400 === 101) return { method: 'POST', url: '/availableSoftwareRelease', payload: form({ url: SOFTWARE_URL, computer_id: id }) };
  if (i % 400 === 301) return { method: 'POST', url: '/useComputer', payload: form({ computer_id: id, use_string: usageJournal(id, PARTITIONS) }) };
  return { method: 'GET', url: `/getFullComputerInformation?computer_id=${id}` };
}

async function round(app: FastifyInstance, n: number, roundNo: number, computers: number): Promise<number> {
  const before = process.cpuUsage();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const r = request(next++, roundNo, computers);
      const res = await app.inject({ ...r, headers: r.payload ? { 'content-type': 'application/x-www-form-urlencoded' } : {} });
      if (res.statusCode !== 200) throw new Error(`${r.url}: ${res.statusCode} ${res.body.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / n;
}

/** The difference itself: the poll's one-query read transaction, 20,000 times per round, 8 in flight. */
async function transactionsAlone(file: string, computers: number, rounds: number): Promise<void> {
  const store = new SqliteStore(file);
  const n = 20_000;
  const runs: Record<Design, (c: string) => Promise<unknown>> = {
    async: (c) => store.read((t) => t.computerGeneration(c)),
    sync: (c) => store.runSync(false, (t) => t.computerGeneration(c)),
  };
  const figures: Record<Design, number[]> = { async: [], sync: [] };
  for (let r = -1; r < rounds; r++) {
    for (const design of (r % 2 === 0 ? ['async', 'sync'] : ['sync', 'async']) as Design[]) {
      const before = process.cpuUsage();
      let next = 0;
      const worker = async () => {
        while (next < n) await runs[design](`COMP-${next++ % computers}`);
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      const used = process.cpuUsage(before);
      if (r >= 0) figures[design].push((used.user + used.system) / n);
    }
  }
  await store.close();
  const a = median(figures.async);
  const s = median(figures.sync);
  console.log(`the read transaction alone (computerGeneration), median CPU: async ${a.toFixed(2)} µs, sync ${s.toFixed(2)} µs; ` +
    `difference ${(a - s).toFixed(2)} µs per transaction`);
}

export async function main(args: string[]): Promise<void> {
  const { opts } = parseArgs(args);
  const computers = Number(opts.get('computers') ?? 2000);
  const rounds = Number(opts.get('rounds') ?? 8);
  const requests = Number(opts.get('requests') ?? 5000);
  header(`master-tx: ${computers} computers × ${PARTITIONS} partitions, ${rounds} rounds of ${requests} requests per design, alternating`);
  const dir = mkdtempSync(path.join(tmpdir(), 'slapos-master-tx-'));
  try {
    const file = path.join(dir, 'master.db');
    const filler = new SqliteStore(file);
    await populate(filler, 0, computers, { partitions: PARTITIONS, busy: BUSY / PARTITIONS });
    await filler.close();
    const apps: Record<Design, FastifyInstance> = { async: await build(file, 'async'), sync: await build(file, 'sync') };
    const figures: Record<Design, number[]> = { async: [], sync: [] };
    // Warm-up: every answer rendered once by each, and the JIT of both paths.
    for (const design of ['async', 'sync'] as const) await round(apps[design], computers, -1, computers);
    for (let r = 0; r < rounds; r++) {
      // ABBA order: neither design always runs right after the other's writes.
      const order: Design[] = r % 2 === 0 ? ['async', 'sync'] : ['sync', 'async'];
      for (const design of order) figures[design].push(await round(apps[design], requests, r, computers));
      console.log(`  round ${r + 1}: async ${figures.async.at(-1)!.toFixed(1)} µs, sync ${figures.sync.at(-1)!.toFixed(1)} µs CPU per request`);
    }
    const a = median(figures.async);
    const s = median(figures.sync);
    console.log(`median CPU per request: async ${a.toFixed(1)} µs, sync ${s.toFixed(1)} µs; sync/async ${(s / a).toFixed(3)}; ${loadLine()}`);
    for (const app of Object.values(apps)) await app.close();
    await transactionsAlone(file, computers, rounds);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
