// `npm run bench -- node-scale [--partitions 1000] [--rounds 3] [--idle-seconds 20] [--skip format,instance,collect]
// [--before <other checkout>/bin/slapos.js] [--cpu-prof <dir>]`,
// as root (issue 29: one node, 1,000 partitions). Each figure with the load
// and, where the goal is a start-up-sized time, its ratio to `node -e 0` in
// the same run:
// - format, cold and no-op re-run, in a namespace it creates and removes,
//   users with the test prefix (removed after), our master in the namespace:
//   node's own wall time inside the namespace, CPU, and `node -e 0` run the
//   same way in the same namespace; `--before` alternates another checkout's
//   re-run on the same node, `--cpu-prof` writes V8 profiles of the re-runs;
// - then, on N plain partition directories owned by nobody with a master in a
//   child process (bench/instance.ts: a first pass with a stub buildout, no-op
//   passes, peak RSS), `node status`, `node report` and the daemon's own CPU
//   while idle (schedules off), on that node;
// - collect on N partitions (bench/collect.ts).
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatCli, formatEnv, inNetnsCommand, removeTestCgroups, removeTestUsers, setPartitionAmount, type FormatEnv } from '../test/helpers/format.js';
import { cli, fakeContext, header, loadLine, median, parseArgs } from './lib.js';
import type { InstanceBenchEnv } from './instance.js';

const TIMEFORMAT = ['/usr/bin/env', 'TIMEFORMAT=cpu %3U %3S real %3R'];

interface Timed { wall: number; cpu: number; status: number | null }

function parseTime(stderr: string): { wall: number; cpu: number } {
  const m = /cpu ([\d.]+) ([\d.]+) real ([\d.]+)/.exec(stderr);
  return m ? { wall: Number(m[3]) * 1000, cpu: (Number(m[1]) + Number(m[2])) * 1000 } : { wall: Number.NaN, cpu: Number.NaN };
}

/** A command in the namespace, entered as the tests do (inNetnsCommand), timed by bash inside it (namespace entry excluded). */
async function timedInNamespace(env: FormatEnv, argv: string[]): Promise<Timed> {
  const { command, args, hold } = inNetnsCommand(env.netns, [...TIMEFORMAT, 'bash', '-c', 'time "$@"', 'bash', ...argv]);
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  spawnSync('rmdir', [hold]);
  return { ...parseTime(r.stderr), status: r.status };
}

/** `slapos node format` of the CLI `bin` (this checkout's, or `--before`'s) in the namespace; `cpuProf`: a V8 profile directory. */
const formatTimed = (env: FormatEnv, bin: string, cpuProf?: string) =>
  timedInNamespace(env, [process.execPath, ...(cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${cpuProf}`] : []), bin, 'node', 'format', '--cfg', env.cfg, '--now']);

/** `node -e 0` entered the same way, in the same namespace (the issue's `ip netns exec … node -e 0`). */
const nodeNoopInNamespace = (env: FormatEnv) => timedInNamespace(env, [process.execPath, '-e', '0']);

const verdict = (value: number, goal: number, unit = 'ms') =>
  value < goal ? `met (goal < ${goal} ${unit})` : `missed by ${(value - goal).toFixed(unit === 'ms' ? 0 : 1)} ${unit} (goal < ${goal} ${unit})`;

/**
 * Our master (`slapos proxy start`) inside the namespace on its loopback, as
 * a node has one: the re-runs measure the report (or its skip when nothing
 * changed, src/format/report-record.ts) rather than a refused connection.
 */
async function masterInNamespace(env: FormatEnv): Promise<() => Promise<void>> {
  const port = 40000 + (process.pid % 20000);
  writeFileSync(env.cfg, readFileSync(env.cfg, 'utf8').replace('master_url = http://127.0.0.1:9', `master_url = http://127.0.0.1:${port}`) +
    `\n[slapproxy]\nhost = 127.0.0.1\nport = ${port}\ndatabase_uri = ${env.dir}/proxy.db\ncomputer_id = COMP-TEST\n`);
  const { command, args, hold } = inNetnsCommand(env.netns, [process.execPath, cli, 'proxy', 'start', '--cfg', env.cfg]);
  const master = spawn(command, args, { stdio: 'ignore' });
  const exited = new Promise((resolve) => master.once('exit', resolve));
  const stop = async () => {
    master.kill('SIGTERM');
    await exited;
    spawnSync('rmdir', [hold]);
  };
  for (let i = 0; ; i++) {
    if (spawnSync('ip', ['netns', 'exec', env.netns, 'bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]).status === 0) return stop;
    if (i > 100 || master.exitCode !== null) {
      await stop();
      throw new Error('the master did not start in the namespace');
    }
    await sleep(100);
  }
}

async function formatSection(n: number, rounds: number, before: string | undefined, cpuProf: string | undefined): Promise<void> {
  console.log(`\n## format, ${n} partitions (bridge with a veth port, taps, IPv6 and IPv4 per partition; our master in the namespace) — ${loadLine()}`);
  const a = fakeContext();
  const env = formatEnv(a.t, { kind: 'bridge' }, { partition_amount: String(n), ipv4_local_network: '10.9.0.0/16' });
  const stopMaster = await masterInNamespace(env);
  try {
    const cold = await formatTimed(env, cli);
    console.log(`format cold: ${(cold.wall / 1000).toFixed(2)} s wall (node's own), ${(cold.cpu / 1000).toFixed(2)} s CPU, exit ${cold.status}: ${verdict(cold.wall / 1000, 10, 's')}`);
    // Alternated in each round: node -e 0, this checkout's re-run, then --before's (same node, same namespace).
    const runs = new Map<string, { wall: number[]; cpu: number[]; ratio: number[]; status: Set<number | null> }>();
    const add = (label: string, r: Timed, base: Timed) => {
      const e = runs.get(label) ?? { wall: [], cpu: [], ratio: [], status: new Set() };
      e.wall.push(r.wall);
      e.cpu.push(r.cpu);
      e.ratio.push(r.wall / base.wall);
      e.status.add(r.status);
      runs.set(label, e);
    };
    for (let i = 0; i < rounds; i++) {
      const b = await nodeNoopInNamespace(env);
      add('node -e 0', b, b);
      add('re-run', await formatTimed(env, cli, cpuProf && path.join(cpuProf, 'after')), b);
      if (before) add(`re-run, --before ${before}`, await formatTimed(env, before, cpuProf && path.join(cpuProf, 'before')), b);
    }
    for (const [label, e] of runs) {
      if (label === 'node -e 0') {
        console.log(`node -e 0 in the namespace: ${median(e.wall).toFixed(0)} ms wall, ${median(e.cpu).toFixed(0)} ms CPU`);
        continue;
      }
      const med = median(e.wall);
      console.log(`format no-op ${label}: ${med.toFixed(0)} ms wall, ${median(e.cpu).toFixed(0)} ms CPU, exit ${[...e.status].join('/')}; ` +
        `ratio ${median(e.ratio).toFixed(2)}× node -e 0 (median of ${rounds} pairs): ${verdict(med, 600)}${n <= 100 ? `; ratio goal ≤ 4×: ${median(e.ratio) <= 4 ? 'met' : 'missed'}` : ''}`);
    }
  } finally {
    setPartitionAmount(env, 0); // format's own shrink removes users, taps, directories and cgroups
    await formatCli(env, ['--allow-offline-shrink']);
    await stopMaster();
    removeTestUsers(env.prefix);
    removeTestCgroups(env.cgroupParent);
    await a.cleanup();
  }
}

function slaposSync(args: string[], cfg: string): { ms: number; status: number | null; stdout: string; stderr: string } {
  const started = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'maxrss %M', process.execPath, cli, ...args, '--cfg', cfg], { encoding: 'utf8', maxBuffer: 1 << 28 });
  return { ms: performance.now() - started, status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const rss = (stderr: string) => (Number(/maxrss (\d+)/.exec(stderr)?.[1] ?? Number.NaN) / 1024).toFixed(1);

function cpuTicks(pid: number): { self: number; children: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  // after "comm": state is field 3 → utime 14, stime 15, cutime 16, cstime 17 (1-based) → index 11..14
  return { self: Number(fields[11]) + Number(fields[12]), children: Number(fields[13]) + Number(fields[14]) };
}

async function onTheNode(env: InstanceBenchEnv, idleSeconds: number): Promise<void> {
  console.log(`\n## on the node of ${env.n} processed partitions — ${loadLine()}`);
  for (const args of [['node', 'status'], ['node', 'status', '--json']]) {
    const r = slaposSync(args, env.cfg);
    console.log(`slapos ${args.join(' ')}: ${r.ms.toFixed(0)} ms wall, peak RSS ${rss(r.stderr)} MiB, exit ${r.status}, ${r.stdout.split('\n').length} lines`);
  }
  const report = slaposSync(['node', 'report', '--now'], env.cfg);
  console.log(`slapos node report --now: ${report.ms.toFixed(0)} ms wall, peak RSS ${rss(report.stderr)} MiB, exit ${report.status}`);
  // The daemon with every schedule off and its metrics on a free port: what it costs while nothing is due.
  const cfg = path.join(env.dir, 'daemon.cfg');
  writeFileSync(cfg, `${readFileSync(env.cfg, 'utf8')}\n[daemon]\nsoftware_schedule =\ninstance_schedule =\nreport_schedule =\ncollect_schedule =\n` +
    `metrics_host = 127.0.0.1\nmetrics_port = ${30000 + (process.pid % 20000)}\n`);
  const daemon = spawn(process.execPath, [cli, 'node', 'daemon', '-q', '--cfg', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  daemon.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    await sleep(3000);
    if (daemon.exitCode !== null) throw new Error(`the daemon exited (${daemon.exitCode}): ${stderr.slice(0, 500)}`);
    const before = cpuTicks(daemon.pid!);
    const t0 = performance.now();
    await sleep(idleSeconds * 1000);
    const after = cpuTicks(daemon.pid!);
    const seconds = (performance.now() - t0) / 1000;
    const hz = 100; // USER_HZ
    const self = (after.self - before.self) / hz;
    const status = readFileSync(`/proc/${daemon.pid}/status`, 'utf8');
    console.log(`node daemon, schedules off, ${seconds.toFixed(0)} s idle: ${(self * 1000).toFixed(0)} ms CPU (${((self / seconds) * 100).toFixed(2)} % of a core), ` +
      `children ${((after.children - before.children) / hz * 1000).toFixed(0)} ms, RSS ${(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024).toFixed(1)} MiB`);
  } finally {
    daemon.kill('SIGTERM');
    await new Promise((resolve) => (daemon.exitCode !== null ? resolve(undefined) : daemon.once('exit', resolve)));
  }
}

export async function main(args: string[]): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run the node-scale benchmark as root');
  const { opts } = parseArgs(args);
  const n = Number(opts.get('partitions') ?? 1000);
  const rounds = Number(opts.get('rounds') ?? 3);
  const idleSeconds = Number(opts.get('idle-seconds') ?? 20);
  const skip = new Set((opts.get('skip') ?? '').split(',').filter(Boolean));
  header(`slapos node at scale: ${n} partitions`);
  if (!skip.has('format')) await formatSection(n, rounds, opts.get('before'), opts.get('cpu-prof'));
  if (!skip.has('instance')) {
    console.log(`\n## node instance, ${n} partitions (bench/instance.ts) — ${loadLine()}`);
    await (await import('./instance.js')).main([String(n)], (env) => onTheNode(env, idleSeconds));
  }
  if (!skip.has('collect')) {
    console.log(`\n## node collect, ${n} partitions (bench/collect.ts; goal < 2 s) — ${loadLine()}`);
    await (await import('./collect.js')).main(['--sizes', String(n), '--rounds', String(rounds)]);
  }
}
