// `npm run bench -- instance N --real [--launcher-b <file>] [--rounds R]`:
// `slapos node instance` with REAL buildouts of the example release
// (examples/hello-http), as root, partitions run as nobody. It prints the
// first pass (every partition deployed), a no-op pass, and passes after
// re-requesting every instance with new parameters (each one a no-change
// buildout update: the case of issue 31), with the mean time of each step.
// The re-requested passes alternate between A, the node as configured by
// default (its launcher, forked by the buildout fork server), and B: with
// --launcher-b <file>, that launcher (e.g. the branch point's; exec'd, as any
// [slapos] buildout); else the same launcher exec'd ([slapos]
// buildout_fork_server = false). Ratios are medians of the pairwise ratios.
// `--first exec` makes the first pass B's (run the benchmark once each way
// to compare first passes: a partition is deployed only once per run).
// The master runs as a child process (`slapos proxy start`), as in the
// stub mode (instance.ts). Plain partition directories owned by nobody, one
// 127.31.x.y address each (the services bind there; no namespace needed).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { runInstanceCommand } from '../src/instance/command.js';
import { BUILDOUT_LAUNCHER, SYSTEM_PYTHON } from '../src/software/buildout.js';
import { urlHash } from '../src/software/plan.js';
import { cli, header, loadLine, median, parseArgs, repo } from './lib.js';
import { benchRoot, buildoutVia, childrenCpuMs, collectingLogger, COMPUTER, makePartitions, mean, removeBenchRoot, startMaster, stepLine, stepTimes, writeNodeConfig } from './instance-env.js';

const EXAMPLE = path.join(repo, 'examples', 'hello-http', 'software.cfg');

interface Pass { code: number; wall: number; processed: number; failed: number; steps: Map<string, number[]>; childCpu: number; via: { forked: number; execd: number }; serverReadyMs: number | undefined; runMs: number }

export async function realMain(args: string[]): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run the instance benchmark as root');
  const { positional, opts } = parseArgs(args);
  const n = Number(positional[0] ?? 10);
  const rounds = Number(opts.get('rounds') ?? 3);
  const launcherB = opts.get('launcher-b');
  const firstB = opts.get('first') === 'exec';
  header(`slapos node instance benchmark, REAL buildouts of examples/hello-http, ${n} partitions`);
  const root = benchRoot('slapos-bench-instance-real-');
  const release = path.join(root.soft, urlHash(EXAMPLE));
  mkdirSync(release, { recursive: true, mode: 0o755 });

  // The release, built once as `node software` would (buildout.cfg extending the URL).
  writeFileSync(path.join(release, 'buildout.cfg'), `[buildout]\nextends = ${EXAMPLE}\n`);
  const built = performance.now();
  const build = spawnSync(SYSTEM_PYTHON, [BUILDOUT_LAUNCHER, '-U', '-c', 'buildout.cfg'], { cwd: release, encoding: 'utf8', env: { HOME: release, PYTHONNOUSERSITE: 'true' } });
  if (build.status !== 0) throw new Error(`building the example release failed:\n${build.stdout}${build.stderr}`);
  writeFileSync(path.join(release, '.completed'), '');
  console.log(`example release built in ${((performance.now() - built) / 1000).toFixed(2)} s`);

  const cfgA = writeNodeConfig(root, 'slapos.cfg');
  const cfgB = writeNodeConfig(root, 'slapos-b.cfg', launcherB ? [`buildout = ${path.resolve(launcherB)}`] : ['buildout_fork_server = false']);
  const nameA = 'A (node\'s launcher, fork server)';
  const nameB = launcherB ? `B (${launcherB}, exec'd)` : 'B (node\'s launcher, exec\'d)';
  const partitions = makePartitions(root, n, (i) => [{ addr: `127.31.${(i >> 8) & 255}.${(i & 255) + 1}`, netmask: '255.255.255.255' }]);
  const { client, stop } = await startMaster(root, cli, cfgA, partitions);
  try {
    await client.supplySupply(EXAMPLE, COMPUTER);
    const request = async (round: number) => {
      for (let i = 0; i < n; i++) await client.requestComputerPartition(EXAMPLE, `inst${i}`, { parameters: { i: String(i), round: String(round) } }).catch(() => undefined);
    };
    const pass = async (cfg: string): Promise<Pass> => {
      const config = loadConfig(cfg);
      const { log, records } = collectingLogger();
      let out = '';
      const cpu = childrenCpuMs();
      const started = performance.now();
      const code = await runInstanceCommand({ config, log, out: (text) => (out = text) }, { now: true, json: true });
      const wall = performance.now() - started;
      const summary = JSON.parse(out) as { processed: string[]; failed: unknown[] };
      return { code, wall, processed: summary.processed.length, failed: summary.failed.length, steps: stepTimes(records()), childCpu: childrenCpuMs() - cpu, via: buildoutVia(records()),
        runMs: median(records().filter((r) => r['msg'] === 'buildout ended').map((r) => Number(r['duration_ms']))),
        serverReadyMs: records().find((r) => r['msg'] === 'buildout fork server ready')?.['duration_ms'] as number | undefined };
    };
    const show = (what: string, p: Pass) => console.log(`${what}: exit ${p.code}, ${p.processed} processed, ${p.failed} failed, buildouts ${p.via.forked} forked ${p.via.execd} exec'd${p.serverReadyMs === undefined ? '' : ` (server ready in ${p.serverReadyMs} ms)`}, median buildout run ${p.runMs} ms, ` +
      `${(p.wall / 1000).toFixed(2)} s (${(p.wall / Math.max(1, p.processed) / 1000).toFixed(2)} s per processed partition, children's CPU ${(p.childCpu / Math.max(1, p.processed)).toFixed(0)} ms); mean ms per step: ${stepLine(p.steps)}; ${loadLine()}`);

    await request(0);
    show(`first pass, ${firstB ? nameB : nameA}`, await pass(firstB ? cfgB : cfgA));
    show('no-op pass', await pass(cfgA));
    const a: Pass[] = [];
    const b: Pass[] = [];
    for (let k = 1; k <= rounds; k++) {
      // Re-requested with new parameters: every partition's buildout runs again, changing nothing it installed.
      await request(2 * k - 1);
      a.push(await pass(cfgA));
      show(`re-requested pass ${k}, ${nameA}`, a.at(-1)!);
      await request(2 * k);
      b.push(await pass(cfgB));
      show(`re-requested pass ${k}, ${nameB}`, b.at(-1)!);
    }
    const buildout = (p: Pass) => mean(p.steps.get('buildout') ?? []);
    const cpu = (p: Pass) => p.childCpu / Math.max(1, p.processed);
    console.log(`re-requested passes, ${nameA}: median ${(median(a.map((p) => p.wall)) / 1000).toFixed(2)} s, buildout step ${median(a.map(buildout)).toFixed(0)} ms, children's CPU ${median(a.map(cpu)).toFixed(0)} ms per partition`);
    if (b.length > 0) {
      console.log(`re-requested passes, ${nameB}: median ${(median(b.map((p) => p.wall)) / 1000).toFixed(2)} s, buildout step ${median(b.map(buildout)).toFixed(0)} ms, children's CPU ${median(b.map(cpu)).toFixed(0)} ms per partition`);
      console.log(`B / A (median of pairwise ratios): pass ${median(a.map((p, i) => b[i]!.wall / p.wall)).toFixed(2)}×, buildout step ${median(a.map((p, i) => buildout(b[i]!) / buildout(p))).toFixed(2)}×, ` +
        `children's CPU ${median(a.map((p, i) => cpu(b[i]!) / cpu(p))).toFixed(2)}×; ${loadLine()}`);
    }
  } finally {
    await stop();
    await removeBenchRoot(root);
  }
}
