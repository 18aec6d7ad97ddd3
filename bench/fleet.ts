// The fleet benchmark: one master (`slapos proxy start`, SQLite or a throw-away
// PostgreSQL cluster) and N compute nodes, each in its own network namespace
// (bridge "slapif0" with its own IPv6 /64 and IPv4 /24, a veth "uplink" to a
// host bridge that carries the master's address), its own roots, user prefix,
// cgroup parent and supervisord. Every node formats, builds examples/hello-http,
// and runs `node instance` (the real CLI, in the namespace) until each of its
// partitions' instances is started and has published its connection
// parameters; then every instance is re-requested with a new parameter and the
// loops run again. Options: --nodes N --partitions P --engine sqlite|pg
// --workers W (node passes run at the same time) --exec-buildouts (no buildout
// fork server) --cleanup-only, --cache (at the end, the software phase again
// through the network cache: node 0 builds and uploads, the others download;
// see softwareThroughCache).
//
// Everything made is recorded, as it is made, in /tmp/slapos-fleet-<pid>.reg
// (the test helpers' registry format, plus "link" and "pid" lines) and removed
// at exit, on SIGINT/SIGTERM, or by `--cleanup-only` for a run that died.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PgStore } from '../src/master/pg-store.js';
import { SqliteStore } from '../src/master/sqlite-store.js';
import type { Store } from '../src/master/store.js';
import { SlapClient } from '../src/slap/client.js';
import { formatCli, formatEnv, nodeCli, removeTestCgroups, removeTestUsers, type CliResult, type FormatEnv } from '../test/helpers/format.js';
import { postgresMissing, startPostgres, type TestPostgres } from '../test/helpers/postgres.js';
import { freePort } from '../test/helpers/proxy-process.js';
import { isAlive, tempDir } from '../test/helpers/system.js';
import { listEntries } from '../src/networkcache/client.js';
import { urlHash } from '../src/software/plan.js';
import { setKey } from '../test/instance/env.js';
import { makeSigner } from '../test/networkcache/helpers.js';
import { fakeContext, header, parseArgs, repo } from './lib.js';
import { fleetAddresses, histogramQuantile, parseHistogram, subtractHistogram, type Histogram } from './fleet-plan.js';

const EXAMPLE = path.join(repo, 'examples', 'hello-http', 'software.cfg');
const REGISTRY = `/tmp/slapos-fleet-${process.pid}.reg`;
const MASTER_IP = '10.253.0.1';

function record(kind: 'link' | 'pid', value: string): void {
  appendFileSync(REGISTRY, `${kind} ${value}\n`);
}

/** Removes what a registry file lists: servers, supervisords, users, cgroups, namespaces, links, directories. */
export async function cleanupRegistry(file: string, removeFile = true): Promise<void> {
  let lines: [string, string][] = [];
  try {
    lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)]);
  } catch {
    return;
  }
  const of = (kind: string) => lines.filter(([k]) => k === kind).map(([, v]) => v);
  for (const pid of of('pid').map(Number)) if (pid > 1 && isAlive(pid)) process.kill(pid, 'SIGTERM');
  // Supervisords stop their programs one by one (about 1 s each for hello-http): kill every tree at once instead.
  const trees: number[] = [];
  for (const dir of of('dir')) {
    const file = path.join(dir, 'inst', 'var', 'run', 'supervisord.pid');
    const pid = existsSync(file) ? Number(readFileSync(file, 'utf8').trim()) : 0;
    if (pid > 1 && isAlive(pid)) trees.push(pid, ...descendants(pid));
  }
  for (const pid of trees) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (let i = 0; i < 100 && trees.some(isAlive); i++) await sleep(100);
  for (const dir of of('dir')) {
    const pg = path.join(dir, 'data', 'postmaster.pid');
    if (existsSync(pg)) {
      const pid = Number(readFileSync(pg, 'utf8').split('\n')[0]);
      if (pid > 1 && isAlive(pid)) process.kill(pid, 'SIGINT');
      for (let i = 0; i < 50 && pid > 1 && isAlive(pid); i++) await sleep(100);
    }
  }
  for (const pid of of('pid').map(Number)) if (pid > 1 && isAlive(pid)) process.kill(pid, 'SIGKILL');
  // Services whose supervisord died first are orphans: every process of a recorded user prefix goes.
  const uids = new Set(readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':'))
    .filter(([name]) => of('prefix').some((prefix) => name?.startsWith(prefix))).map((f) => Number(f[2])));
  const orphans = uids.size === 0 ? [] : readdirSync('/proc').filter((e) => /^\d+$/.test(e)).map(Number).filter((pid) => {
    try {
      return uids.has(Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]));
    } catch {
      return false;
    }
  });
  for (const pid of orphans) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (let i = 0; i < 100 && orphans.some(isAlive); i++) await sleep(100);
  for (const prefix of of('prefix')) {
    removeTestUsers(prefix);
    removeTestCgroups(`${prefix}cg`);
  }
  for (const name of of('netns')) spawnSync('ip', ['netns', 'del', name]);
  for (const link of of('link')) spawnSync('ip', ['link', 'del', link], { stdio: 'ignore' });
  for (const dir of of('dir')) if (dir.startsWith('/tmp/')) rmSync(dir, { recursive: true, force: true });
  if (removeFile) unlinkSync(file);
}

interface Node {
  n: number;
  id: string;
  env: FormatEnv;
  instanceRoot: string;
  partitions: string[];
}

interface Summary { processed: string[]; upToDate: string[]; failed: { id: string; error: string }[]; promiseFailed: unknown[] }

/** nodeCli, with /usr/bin/time around node for the loop's peak RSS (KiB). */
async function loopPass(node: Node, command: 'software' | 'instance', cfg = node.env.cfg, wrapper: string[] = [], quiet = true): Promise<{ result: CliResult; ms: number; maxRssKiB: number; summary?: Summary }> {
  const started = performance.now();
  const result = await nodeCli(node.env, ['node', command, '--now', '--json', ...(quiet ? ['-q'] : []), '--cfg', cfg], {}, [...wrapper, '/usr/bin/time', '-f', 'fleet-maxrss %M']);
  const ms = performance.now() - started;
  const maxRssKiB = Number(/fleet-maxrss (\d+)/.exec(result.stderr)?.[1] ?? Number.NaN);
  let summary: Summary | undefined;
  try {
    summary = JSON.parse(result.stdout) as Summary;
  } catch {
    summary = undefined;
  }
  return { result, ms, maxRssKiB, ...(summary ? { summary } : {}) };
}

/** Runs `task` over `items` with at most `workers` at a time; a task returning false is queued again. */
async function pool<T>(items: T[], workers: number, task: (item: T) => Promise<boolean>, interrupted: () => boolean): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: Math.min(workers, items.length) }, async () => {
    for (let item = queue.shift(); item !== undefined && !interrupted(); item = queue.shift()) {
      if (!(await task(item))) queue.push(item);
    }
  }));
}

function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime + stime, in 100 Hz ticks
}

function statusKiB(pid: number, key: string): number {
  return Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

/** Pss (KiB) of a process, 0 when it is gone. */
function pssKiB(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

function descendants(root: number): number[] {
  const parent = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      parent.set(ppid, [...(parent.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => { for (const child of parent.get(pid) ?? []) { out.push(child); walk(child); } };
  walk(root);
  return out;
}

/** Memory of one node's supervisord, its watchdog (a Node process) and its services (Pss, KiB). */
function nodeMemory(node: Node): { supervisord: number; watchdog: number; services: number } {
  const pid = Number(readFileSync(path.join(node.instanceRoot, 'var', 'run', 'supervisord.pid'), 'utf8').trim());
  let watchdog = 0;
  let services = 0;
  for (const child of descendants(pid)) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${child}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (cmdline.includes('slapos-watchdog')) watchdog += pssKiB(child);
    else services += pssKiB(child);
  }
  return { supervisord: pssKiB(pid), watchdog, services };
}

async function scrape(url: string): Promise<Histogram> {
  const response = await fetch(`${url}metrics`);
  return parseHistogram(await response.text(), 'slapos_master_request_duration_seconds', (labels) => !labels.includes('metrics'));
}

const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
const load = () => os.loadavg()[0]!.toFixed(1);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);

async function waitForPort(host: string, port: number): Promise<void> {
  for (let i = 0; ; i++) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, host);
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (i > 300) throw new Error(`nothing listens on ${host}:${port} after 30 s`);
    await sleep(100);
  }
}

const indentPem = (pem: string) => pem.trim().split('\n').map((line) => `  ${line}`).join('\n');

/**
 * --cache: the software phase again, through the network cache, after the
 * rounds (so that every figure before it is the one of a run without
 * --cache). The cache is our master program started a second time, with TLS,
 * as the fleet's cache server (the SLAP master stays plain HTTP, as without
 * --cache): its CA (`proxy init-ca`) issues node 0's client certificate, the
 * only identity that may upload; downloads are open, over HTTPS with that CA
 * as trust root. The release signing key and its certificate are made here
 * (openssl). Node 0 builds and uploads; the others download, with a buildout
 * that fails if it is ever run. A real fleet has the same software_root on
 * every node (built releases hold absolute paths): each pass runs in its own
 * mount namespace where the node's own directory is bind-mounted on one
 * common path, so that what a node downloads is what would run there.
 */
async function softwareThroughCache(fleet: Node[], t: ReturnType<typeof fakeContext>['t'], dir: string, workers: number,
  interrupted: () => boolean, without: { totalMs: number; perNodeMs: number; load: string }): Promise<void> {
  const bin = path.join(repo, 'bin', 'slapos.js');
  const ssl = path.join(dir, 'cache-ssl');
  const init = spawnSync(process.execPath, [bin, 'proxy', 'init-ca', '--dir', ssl, '--server-name', MASTER_IP, '--computer', fleet[0]!.id], { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`proxy init-ca: ${init.stderr}`);
  const port = await freePort();
  const cfg = path.join(dir, 'cache-master.cfg');
  writeFileSync(cfg, `[slapos]\ncomputer_id = CACHE\n[slapproxy]\nhost = ${MASTER_IP}\nport = ${port}\ndatabase_uri = ${path.join(dir, 'cache-master.db')}\n` +
    `server_key_file = ${ssl}/server.key\nserver_cert_file = ${ssl}/server.crt\nca_file = ${ssl}/ca.crt\n`);
  const server = spawn(process.execPath, [bin, 'proxy', 'start', '--cfg', cfg], { stdio: 'ignore' });
  record('pid', String(server.pid));
  try {
    await waitForPort(MASTER_IP, port);
    const base = `https://${MASTER_IP}:${port}`;
    const signer = makeSigner(t, 'fleet release signer');
    const common = tempDir(t, 'slapos-fleet-software-');
    const noBuildout = path.join(dir, 'no-buildout');
    writeFileSync(noBuildout, '#!/bin/sh\necho "buildout run on a node that should have downloaded the release" >&2\nexit 1\n', { mode: 0o755 });
    const passFor = (node: Node): { cfg: string; own: string; wrapper: string[] } => {
      const own = path.join(node.env.dir, 'soft-cache');
      mkdirSync(own, { mode: 0o755 });
      const owner = statSync(path.join(node.env.dir, 'soft'));
      chownSync(own, owner.uid, owner.gid);
      const first = node === fleet[0];
      const tls = (name: string) => `${name}-ca-file = ${ssl}/ca.crt\n` +
        (first ? `${name}-cert-file = ${ssl}/computer-${node.id}.crt\n${name}-key-file = ${ssl}/computer-${node.id}.key\n` : '');
      const text = readFileSync(node.env.cfg, 'utf8').replace(/^software_root = .*$/m, `software_root = ${common}`)
        .replace('[slapos]\n', first ? '[slapos]\n' : `[slapos]\nbuildout = ${noBuildout}\n`) +
        `\n[networkcache]\ndownload-binary-cache-url = ${base}/shacache\ndownload-binary-dir-url = ${base}/shadir\n` +
        (first ? `upload-binary-cache-url = ${base}/shacache\nupload-binary-dir-url = ${base}/shadir\nsignature-private-key-file = ${signer.keyFile}\n` : '') +
        tls('shacache') + tls('shadir') + `signature-certificate-list =\n${indentPem(signer.certPem)}\n`;
      const file = path.join(node.env.dir, 'slapos-cache.cfg');
      writeFileSync(file, text);
      return { cfg: file, own, wrapper: ['sh', '-c', 'mount --bind "$0" "$1" && shift && exec "$@"', own, common] };
    };
    const hash = urlHash(EXAMPLE);
    // The cache steps' own durations, from the node's log lines (the rest of a pass is start-up and the master).
    const logged = (pass: Awaited<ReturnType<typeof loopPass>>, message: string) =>
      Number(new RegExp(`${message}.*? seconds=([\\d.]+)`).exec(pass.result.stderr)?.[1] ?? Number.NaN) * 1000;
    const check = (node: Node, pass: Awaited<ReturnType<typeof loopPass>>, own: string) => {
      if (pass.result.status !== 0) throw new Error(`${node.id}: node software (cache) exit ${pass.result.status}: ${pass.result.stderr.slice(-2000)}`);
      if (!existsSync(path.join(own, hash, '.completed'))) throw new Error(`${node.id}: no ${hash}/.completed after the pass`);
    };
    const loadBefore = load();
    const t0 = performance.now();
    const first = passFor(fleet[0]!);
    const built = await loopPass(fleet[0]!, 'software', first.cfg, first.wrapper, false);
    check(fleet[0]!, built, first.own);
    const entries = await listEntries(`${base}/shadir`, hash, { ca: path.join(ssl, 'ca.crt') });
    if (!entries?.length) throw new Error(`${fleet[0]!.id} built the release but nothing is in the cache: ${built.result.stderr.slice(-2000)}`);
    const t1 = performance.now();
    const downloadMs: number[] = [];
    const stepMs: number[] = [];
    await pool(fleet.slice(1), workers, async (node) => {
      const { cfg: nodeCfg, own, wrapper } = passFor(node);
      const pass = await loopPass(node, 'software', nodeCfg, wrapper, false);
      check(node, pass, own);
      downloadMs.push(pass.ms);
      stepMs.push(logged(pass, 'installed from the binary cache'));
      return true;
    }, interrupted);
    const totalMs = performance.now() - t0;
    console.log(`software through the network cache (load average ${loadBefore} → ${load()}): node 0 built and uploaded in ${seconds(t1 - t0)} ` +
      `(upload ${seconds(logged(built, 'uploaded to the binary cache'))}); ` +
      (downloadMs.length
        ? `${downloadMs.length} nodes downloaded it in ${seconds(performance.now() - t1)}, ${seconds(mean(downloadMs))} per node pass, ` +
          `of which download + extraction ${seconds(mean(stepMs))} (buildout never run)`
        : 'no other node (--nodes 1)'));
    console.log(`  software phase: ${seconds(without.totalMs)} without the cache (load average ${without.load}), ${seconds(totalMs)} with it ` +
      `(${(without.totalMs / totalMs).toFixed(2)}×); per node ${seconds(without.perNodeMs)} building, ` +
      (downloadMs.length ? `${seconds(mean(downloadMs))} downloading (${(without.perNodeMs / mean(downloadMs)).toFixed(2)}×)` : 'no download'));
  } finally {
    server.kill('SIGTERM');
    if (server.exitCode === null) await new Promise((resolve) => server.once('exit', resolve));
  }
}

export async function main(args: string[]): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run the fleet benchmark as root');
  const { opts } = parseArgs(args);
  if (opts.has('cleanup-only')) {
    for (const file of readdirSync('/tmp').filter((f) => /^slapos-fleet-\d+\.reg$/.test(f))) {
      const pid = Number(/(\d+)/.exec(file)![1]);
      if (isAlive(pid)) continue;
      await cleanupRegistry(path.join('/tmp', file));
      console.log(`cleaned what /tmp/${file} listed`);
    }
    return;
  }
  const nodes = Number(opts.get('nodes') ?? 2);
  const partitions = Number(opts.get('partitions') ?? 3);
  const engine = opts.get('engine') ?? 'sqlite';
  // Two cores: each pass is mostly CPU (node start-up, buildout in Python); more
  // workers than cores only queue in the scheduler and inflate every latency.
  const workers = Number(opts.get('workers') ?? 2);
  const withCache = opts.has('cache');
  if (!(nodes >= 1 && nodes <= 150 && partitions >= 1 && partitions <= 200)) throw new Error('--nodes 1..150, --partitions 1..200');
  if (engine !== 'sqlite' && engine !== 'pg') throw new Error('--engine sqlite|pg');
  if (engine === 'pg' && postgresMissing()) throw new Error(`--engine pg: ${postgresMissing()}`);
  if (spawnSync('ip', ['-4', '-br', 'addr'], { encoding: 'utf8' }).stdout.includes(`${MASTER_IP}/`)) {
    throw new Error(`${MASTER_IP} is already on this host: another fleet run is going on (or run --cleanup-only)`);
  }
  // The helpers record what they make in $SLAPOS_TEST_REGISTRY: ours.
  process.env.SLAPOS_TEST_REGISTRY = REGISTRY;
  appendFileSync(REGISTRY, '');
  let interrupted = false;
  const cleanups = fakeContext();
  let cleaned: Promise<void> | undefined;
  const cleanup = () => (cleaned ??= (async () => {
    const started = performance.now();
    await cleanupRegistry(REGISTRY, false);
    await cleanups.cleanup().catch((error: unknown) => console.error(`cleanup: ${String(error)}`));
    await cleanupRegistry(REGISTRY);
    console.log(`cleanup: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  })());
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = true;
    console.error(`${signal}: cleaning up`);
    void cleanup().then(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  header(`fleet benchmark: ${nodes} nodes × ${partitions} partitions, ${engine}, ${workers} workers${withCache ? ', then the software phase through the network cache' : ''}, registry ${REGISTRY}`);
  const bridge = `slfb${process.pid}`;
  let pgServer: TestPostgres | undefined;
  let master: ChildProcess | undefined;
  let client: SlapClient | undefined;
  try {
    record('link', bridge);
    spawnSync('ip', ['link', 'add', bridge, 'type', 'bridge']);
    spawnSync('ip', ['addr', 'add', `${MASTER_IP}/16`, 'dev', bridge]);
    spawnSync('ip', ['link', 'set', bridge, 'up']);
    const { t } = cleanups;
    const dir = tempDir(t, 'slapos-fleet-');
    let uri = path.join(dir, 'master.db');
    if (engine === 'pg') {
      pgServer = await startPostgres();
      uri = await pgServer.createDatabase('fleet');
    }
    const port = await freePort();
    const url = `http://${MASTER_IP}:${port}/`;
    const masterCfg = path.join(dir, 'master.cfg');
    writeFileSync(masterCfg, `[slapos]\ncomputer_id = COMP-0\n[slapproxy]\nhost = ${MASTER_IP}\nport = ${port}\n` +
      `database_uri = ${uri}\nallow_insecure_bind = true\n`);
    master = spawn(process.execPath, [path.join(repo, 'bin', 'slapos.js'), 'proxy', 'start', '--cfg', masterCfg], { stdio: 'ignore' });
    record('pid', String(master.pid));
    client = new SlapClient(url);
    for (let i = 0; ; i++) {
      try {
        await fetch(`${url}metrics`);
        break;
      } catch (error) {
        if (i > 100) throw error;
        await sleep(100);
      }
    }
    const masterPid = master.pid!;

    // Nodes: namespace, addresses, uplink, format (which registers the computer at the master).
    const fleet: Node[] = [];
    let t0 = performance.now();
    const formatMs: number[] = [];
    for (let n = 0; n < nodes && !interrupted; n++) {
      const a = fleetAddresses(n);
      const env = formatEnv(t, { kind: 'bridge', ipv6: a.ipv6, ipv4: a.ipv4 }, { partition_amount: String(partitions), ipv4_local_network: a.ipv4Network });
      const host = `sf${process.pid}h${n}`;
      record('link', host);
      spawnSync('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', 'uplink', 'netns', env.netns]);
      spawnSync('ip', ['link', 'set', host, 'master', bridge, 'up']);
      spawnSync('ip', ['-n', env.netns, 'addr', 'add', a.uplink, 'dev', 'uplink']);
      spawnSync('ip', ['-n', env.netns, 'link', 'set', 'uplink', 'up']);
      const id = `COMP-${n}`;
      const instanceRoot = path.join(env.dir, 'inst');
      for (const [key, value] of Object.entries({
        computer_id: id, master_url: url, pidfile_software: path.join(env.dir, 'sr.pid'), pidfile_instance: path.join(env.dir, 'cp.pid'),
        instance_min_free_space: '1M', software_min_free_space: '1M',
        // --exec-buildouts: every instance buildout exec'd instead of forked by the fork server (issue 31's before/after).
        ...(opts.has('exec-buildouts') ? { buildout_fork_server: 'false' } : {}),
      })) setKey(env.cfg, key, value);
      fleet.push({ n, id, env, instanceRoot, partitions: [] });
    }
    await pool(fleet, workers, async (node) => {
      const started = performance.now();
      const formatted = await formatCli(node.env, []);
      formatMs.push(performance.now() - started);
      if (formatted.status !== 0) throw new Error(`${node.id}: format exit ${formatted.status}: ${formatted.stderr.slice(-2000)}`);
      const sv = await nodeCli(node.env, ['node', 'supervisord', '--cfg', node.env.cfg]);
      if (sv.status !== 0) throw new Error(`${node.id}: supervisord: ${sv.stderr}`);
      return true;
    }, () => interrupted);
    console.log(`format (+ supervisord start): ${((performance.now() - t0) / 1000).toFixed(1)} s for ${nodes} nodes, ` +
      `${(formatMs.reduce((a, b) => a + b, 0) / formatMs.length / 1000).toFixed(2)} s per node`);

    // Software: the example release on every node (each node builds it in its own software root).
    for (const node of fleet) await client.supplySupply(EXAMPLE, node.id);
    const softLoad = load();
    t0 = performance.now();
    const softMs: number[] = [];
    const softRss: number[] = [];
    await pool(fleet, workers, async (node) => {
      const pass = await loopPass(node, 'software');
      if (pass.result.status !== 0) throw new Error(`${node.id}: node software exit ${pass.result.status}: ${pass.result.stderr.slice(-2000)}`);
      softMs.push(pass.ms);
      softRss.push(pass.maxRssKiB);
      return true;
    }, () => interrupted);
    console.log(`software: ${((performance.now() - t0) / 1000).toFixed(1)} s for ${nodes} nodes, ${(softMs.reduce((a, b) => a + b, 0) / softMs.length / 1000).toFixed(1)} s per node ` +
      `(the release is built once per software root), loop peak RSS ${mib(Math.max(...softRss))}`);
    const withoutCache = { totalMs: performance.now() - t0, perNodeMs: mean(softMs), load: softLoad };

    for (const round of [1, 2]) {
      if (interrupted) break;
      const before = await scrape(url);
      const cpu0 = cpuMs(masterPid);
      t0 = performance.now();
      for (const node of fleet) {
        for (let j = 0; j < partitions; j++) {
          await client.requestComputerPartition(EXAMPLE, `${node.id}-i${j}`, { parameters: { round: String(round), title: `${node.id}-i${j}` }, filter: { computer_guid: node.id } })
            .catch(() => undefined);
        }
      }
      const requestMs = performance.now() - t0;
      const seen = new Map<Node, Set<string>>(fleet.map((node) => [node, new Set()]));
      const passes: number[] = [];
      const rss: number[] = [];
      const failures: string[] = [];
      const passesOf = new Map<Node, number>();
      await pool(fleet, workers, async (node) => {
        const pass = await loopPass(node, 'instance');
        passes.push(pass.ms);
        rss.push(pass.maxRssKiB);
        passesOf.set(node, (passesOf.get(node) ?? 0) + 1);
        const s = pass.summary;
        if (!s) throw new Error(`${node.id}: node instance exit ${pass.result.status}, no summary: ${pass.result.stderr.slice(-2000)}`);
        for (const id of s.processed) seen.get(node)!.add(id);
        node.partitions = [...s.processed, ...s.upToDate];
        for (const f of s.failed) failures.push(`${node.id}/${f.id}: ${f.error.slice(0, 200)}`);
        const done = pass.result.status === 0 && seen.get(node)!.size >= partitions && node.partitions.length >= partitions;
        if (!done && passesOf.get(node)! >= 8) throw new Error(`${node.id}: not converged after 8 passes: ${pass.result.stderr.slice(-2000)}`);
        return done;
      }, () => interrupted);
      const convergeMs = performance.now() - t0;
      const cpu = cpuMs(masterPid) - cpu0;
      const histogram = subtractHistogram(await scrape(url), before);
      // At the master: every instance started, with its connection parameters.
      const store: Store = engine === 'pg' ? await PgStore.open(uri) : new SqliteStore(uri);
      let started = 0;
      let connected = 0;
      try {
        for (const node of fleet) {
          for (const id of node.partitions) {
            const row = await store.read((tx) => tx.getPartition(node.id, id));
            if (row?.reported_state === 'started') started++;
            if (row?.connection_xml?.includes('url-ipv')) connected++;
          }
        }
      } finally {
        await store.close();
      }
      const memory = fleet.map(nodeMemory);
      const sv = memory.reduce((a, m) => a + m.supervisord, 0) / memory.length;
      const services = memory.reduce((a, m) => a + m.services, 0) / memory.length;
      const watchdog = memory.reduce((a, m) => a + m.watchdog, 0) / memory.length;
      const mean = passes.reduce((a, b) => a + b, 0) / passes.length;
      console.log(`round ${round}${round === 2 ? ' (every instance re-requested with a new parameter)' : ''}: ${nodes * partitions} requests in ${(requestMs / 1000).toFixed(1)} s; ` +
        `converged in ${(convergeMs / 1000).toFixed(1)} s after the requests (${passes.length} node passes, mean ${(mean / 1000).toFixed(1)} s); ` +
        `at the master: ${started} started, ${connected} with connection parameters, of ${nodes * partitions}` + (failures.length ? `; ${failures.length} failed passes, first: ${failures[0]}` : ''));
      console.log(`  master: CPU ${(cpu / 1000).toFixed(1)} s during convergence (${((cpu / convergeMs) * 100).toFixed(0)} % of one core), ${histogram.count} requests, ` +
        `p99 ≤ ${(histogramQuantile(histogram, 0.99) * 1000).toFixed(1)} ms, p50 ≤ ${(histogramQuantile(histogram, 0.5) * 1000).toFixed(1)} ms (histogram bucket bounds), ` +
        `mean ${((histogram.sum / Math.max(1, histogram.count)) * 1000).toFixed(1)} ms, peak RSS ${mib(statusKiB(masterPid, 'VmHWM'))}`);
      console.log(`  node instance loop: peak RSS ${mib(Math.max(...rss))} (max over passes, /usr/bin/time)`);
      console.log(`  memory (Pss): per node ${mib(sv + watchdog + services)} (supervisord ${mib(sv)} + watchdog ${mib(watchdog)} + services ${mib(services)}), ` +
        `per instance ${mib(services / partitions)}; fleet total ${mib((sv + watchdog + services) * nodes)}`);
    }
    if (withCache && !interrupted) await softwareThroughCache(fleet, t, dir, workers, () => interrupted, withoutCache);
    console.log(`done — ${new Date().toISOString()}`);
  } finally {
    await client?.close();
    if (master && master.exitCode === null) {
      master.kill('SIGTERM');
      await new Promise((resolve) => master!.once('exit', resolve));
    }
    await pgServer?.stop();
    await cleanup();
  }
}
