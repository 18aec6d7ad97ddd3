// `npm run bench -- instance N --real [--launcher-b <file>] [--rounds R]`:
// `slapos node instance` with REAL buildouts of the example release
// (examples/hello-http), as root, partitions run as nobody. It prints the
// first pass (every partition deployed), a no-op pass, and passes after
// re-requesting every instance with new parameters (each one a no-change
// buildout update: the case of issue 31), with the mean time of each step.
// With --launcher-b, the re-requested passes alternate between the node's
// launcher (A) and that file (B, e.g. the launcher of the branch point),
// and the ratio of the buildout step is the median of the pairwise ratios.
// The master runs as a child process (`slapos proxy start`), as in the
// stub mode (instance.ts). Plain partition directories owned by nobody, one
// 127.31.x.y address each (the services bind there; no namespace needed).
import { spawn, spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../src/config/load.js';
import { runInstanceCommand } from '../src/instance/command.js';
import { SlapClient } from '../src/slap/client.js';
import { BUILDOUT_LAUNCHER, SYSTEM_PYTHON } from '../src/software/buildout.js';
import { urlHash } from '../src/software/plan.js';
import { createLogger } from '../src/util/log.js';
import { stopSupervisord } from '../test/instance/env.js';
import { header, loadLine, median, parseArgs, repo } from './lib.js';

const NOBODY = 65534;
const EXAMPLE = path.join(repo, 'examples', 'hello-http', 'software.cfg');

interface Pass { code: number; wall: number; processed: number; failed: number; steps: Map<string, number[]>; childCpu: number }

/**
 * CPU ms of our reaped descendants (cutime + cstime of /proc/self/stat): the
 * buildouts and promises the pass ran, less sensitive to the machine's load
 * than wall time. Supervisord and the services are not reaped by us.
 */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): cutime and cstime are fields 16 and 17, in clock ticks (100 Hz on Linux).
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

function collectingLogger(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const stderr = new Writable({ write(chunk: Buffer, _e, done) { lines.push(...chunk.toString().split('\n').filter(Boolean)); done(); } });
  return { log: createLogger({ verbose: true, stderr }), lines };
}

function stepTimes(lines: string[]): Map<string, number[]> {
  const total = new Map<string, number[]>();
  for (const line of lines) {
    const m = /step ([\w-]+): ([\d.]+) ms/.exec(line);
    if (m) total.set(m[1]!, [...(total.get(m[1]!) ?? []), Number(m[2])]);
  }
  return total;
}

const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);
const stepLine = (p: Pass) => [...p.steps].map(([name, v]) => `${name} ${mean(v).toFixed(0)}`).join(', ');

export async function realMain(args: string[]): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run the instance benchmark as root');
  const { positional, opts } = parseArgs(args);
  const n = Number(positional[0] ?? 10);
  const rounds = Number(opts.get('rounds') ?? 3);
  const launcherB = opts.get('launcher-b');
  header(`slapos node instance benchmark, REAL buildouts of examples/hello-http, ${n} partitions`);
  const dir = mkdtempSync(path.join(tmpdir(), 'slapos-bench-instance-real-'));
  chmodSync(dir, 0o755);
  const inst = path.join(dir, 'inst');
  const soft = path.join(dir, 'soft');
  const port = 20000 + (process.pid % 20000);
  const release = path.join(soft, urlHash(EXAMPLE));
  mkdirSync(release, { recursive: true, mode: 0o755 });
  mkdirSync(inst, { recursive: true });

  // The release, built once as `node software` would (buildout.cfg extending the URL).
  writeFileSync(path.join(release, 'buildout.cfg'), `[buildout]\nextends = ${EXAMPLE}\n`);
  const built = performance.now();
  const build = spawnSync(SYSTEM_PYTHON, [BUILDOUT_LAUNCHER, '-U', '-c', 'buildout.cfg'], { cwd: release, encoding: 'utf8', env: { HOME: release, PYTHONNOUSERSITE: 'true' } });
  if (build.status !== 0) throw new Error(`building the example release failed:\n${build.stdout}${build.stderr}`);
  writeFileSync(path.join(release, '.completed'), '');
  console.log(`example release built in ${((performance.now() - built) / 1000).toFixed(2)} s`);

  const cfgFor = (launcher: string | undefined, name: string) => {
    const cfg = path.join(dir, name);
    writeFileSync(cfg, [
      '[slapos]', 'computer_id = COMP-BENCH', `master_url = http://127.0.0.1:${port}/`, `software_root = ${soft}`, `instance_root = ${inst}`,
      ...(launcher ? [`buildout = ${launcher}`] : []), `pidfile_instance = ${dir}/cp.pid`, 'instance_min_free_space = 1M',
      '[slapproxy]', 'host = 127.0.0.1', `port = ${port}`, `database_uri = ${dir}/proxy.db`, 'computer_id = COMP-BENCH', '',
    ].join('\n'));
    return cfg;
  };
  const cfgA = cfgFor(undefined, 'slapos.cfg');
  const cfgB = launcherB ? cfgFor(path.resolve(launcherB), 'slapos-b.cfg') : undefined;

  const partitions = [];
  for (let i = 0; i < n; i++) {
    const id = `slappart${i}`;
    const p = path.join(inst, id);
    mkdirSync(p);
    chmodSync(p, 0o750);
    chownSync(p, NOBODY, NOBODY);
    const address_list = [{ addr: `127.31.${(i >> 8) & 255}.${(i & 255) + 1}`, netmask: '255.255.255.255' }];
    writeFileSync(path.join(p, '.slapos-resource'), JSON.stringify({ address_list, reference: id }));
    partitions.push({ reference: id, address_list, tap: { name: `slaptap${i}` } });
  }
  const master = spawn(process.execPath, [path.join(repo, 'bin', 'slapos.js'), 'proxy', 'start', '--cfg', cfgA], { stdio: 'ignore' });
  const client = new SlapClient(`http://127.0.0.1:${port}/`);
  try {
    for (let i = 0; ; i++) {
      try {
        await client.getFullComputerInformation('COMP-BENCH');
        break;
      } catch (error) {
        if (i > 100) throw error;
        await sleep(100);
      }
    }
    await client.loadComputerConfigurationFromXML({ reference: 'COMP-BENCH', address: '10.0.0.1', netmask: '255.255.255.0', partition_list: partitions });
    await client.supplySupply(EXAMPLE, 'COMP-BENCH');
    const request = async (round: number) => {
      for (let i = 0; i < n; i++) await client.requestComputerPartition(EXAMPLE, `inst${i}`, { parameters: { i: String(i), round: String(round) } }).catch(() => undefined);
    };
    const pass = async (cfg: string): Promise<Pass> => {
      const config = loadConfig(cfg);
      const { log, lines } = collectingLogger();
      let out = '';
      const cpu = childrenCpuMs();
      const started = performance.now();
      const code = await runInstanceCommand({ config, log, out: (text) => (out = text) }, { now: true, json: true });
      const wall = performance.now() - started;
      const summary = JSON.parse(out) as { processed: string[]; failed: unknown[] };
      return { code, wall, processed: summary.processed.length, failed: summary.failed.length, steps: stepTimes(lines), childCpu: childrenCpuMs() - cpu };
    };
    const show = (what: string, p: Pass) => console.log(`${what}: exit ${p.code}, ${p.processed} processed, ${p.failed} failed, ` +
      `${(p.wall / 1000).toFixed(2)} s (${(p.wall / Math.max(1, p.processed) / 1000).toFixed(2)} s per processed partition, children's CPU ${(p.childCpu / Math.max(1, p.processed)).toFixed(0)} ms); mean ms per step: ${stepLine(p)}`);

    await request(0);
    show('first pass', await pass(cfgA));
    show('no-op pass', await pass(cfgA));
    const a: Pass[] = [];
    const b: Pass[] = [];
    for (let k = 1; k <= rounds; k++) {
      // Re-requested with new parameters: every partition's buildout runs again, changing nothing it installed.
      await request(2 * k - 1);
      a.push(await pass(cfgA));
      show(`re-requested pass ${k}, launcher A (${BUILDOUT_LAUNCHER})`, a.at(-1)!);
      if (!cfgB) continue;
      await request(2 * k);
      b.push(await pass(cfgB));
      show(`re-requested pass ${k}, launcher B (${launcherB})`, b.at(-1)!);
    }
    const buildout = (p: Pass) => mean(p.steps.get('buildout') ?? []);
    const cpu = (p: Pass) => p.childCpu / Math.max(1, p.processed);
    console.log(`re-requested passes, launcher A: median ${(median(a.map((p) => p.wall)) / 1000).toFixed(2)} s, buildout step ${median(a.map(buildout)).toFixed(0)} ms, children's CPU ${median(a.map(cpu)).toFixed(0)} ms per partition`);
    if (b.length > 0) {
      console.log(`re-requested passes, launcher B: median ${(median(b.map((p) => p.wall)) / 1000).toFixed(2)} s, buildout step ${median(b.map(buildout)).toFixed(0)} ms, children's CPU ${median(b.map(cpu)).toFixed(0)} ms per partition`);
      console.log(`B / A (median of pairwise ratios): pass ${median(a.map((p, i) => b[i]!.wall / p.wall)).toFixed(2)}×, buildout step ${median(a.map((p, i) => buildout(b[i]!) / buildout(p))).toFixed(2)}×, ` +
        `children's CPU ${median(a.map((p, i) => cpu(b[i]!) / cpu(p))).toFixed(2)}×; ${loadLine()}`);
    }
  } finally {
    await client.close();
    master.kill('SIGTERM');
    await stopSupervisord(inst);
    rmSync(dir, { recursive: true, force: true });
  }
}
