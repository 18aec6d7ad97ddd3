// `slapos node instance` on N partitions (default 300), as root: a first pass
// where every partition changed (a stub buildout that only writes an etc/run
// entry, so the figure is the node's own per-partition cost: files, logs,
// buildout spawn, supervisord calls, reports), then a no-op pass (everything
// up to date), in process and as a whole CLI run. The master runs as a child
// process (`slapos proxy start`) so its work is not counted in ours.
// Partitions are plain directories owned by nobody (format is benchmarked apart).
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/load.js';
import { runInstanceCommand } from '../src/instance/command.js';
import { urlHash } from '../src/software/plan.js';
import { compare, header, nodeNoop } from './lib.js';
import { benchRoot, collectingLogger, COMPUTER, makePartitions, mean, removeBenchRoot, startMaster, stepLine, stepTimes, writeNodeConfig } from './instance-env.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// `--cli <bin/slapos.js of another checkout>` measures that one (before/after figures in one run).
const cliAt = process.argv.indexOf('--cli');
const cli = cliAt > 0 ? path.resolve(process.argv[cliAt + 1]!) : path.join(repo, 'bin', 'slapos.js');

function cliWall(cfg: string): Promise<{ ms: number; status: number | null; stdout: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    // BENCH_CPU_PROF=<dir>: a V8 CPU profile of each CLI pass, to see where the time goes.
    const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
    if (process.env.BENCH_NODE_ARGS) prof.push(...process.env.BENCH_NODE_ARGS.split(' '));
    execFile(process.execPath, [...prof, cli, 'node', 'instance', '--now', '--json', '-q', '--cfg', cfg], { encoding: 'utf8', maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
      if (process.env.BENCH_NODE_ARGS) process.stderr.write(stderr);
      resolve({ ms: performance.now() - started, status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout });
    });
  });
}

/** What `extra` gets: the bench's node, with its partitions processed and up to date (bench/node-scale.ts). */
export interface InstanceBenchEnv {
  cfg: string;
  dir: string;
  inst: string;
  n: number;
}

export async function main(args: string[], extra?: (env: InstanceBenchEnv) => Promise<void>): Promise<void> {
  if (args.includes('--real')) return (await import('./instance-real.js')).realMain(args.filter((a) => a !== '--real'));
  if (process.getuid?.() !== 0) throw new Error('run the instance benchmark as root');
  const n = Number(args.find((a) => /^\d+$/.test(a)) ?? 300);
  header(`slapos node instance benchmark, ${n} partitions, CLI ${cli}`);
  const root = benchRoot('slapos-bench-instance-');
  const { dir, inst, soft } = root;
  const url = path.join(dir, 'release', 'software.cfg');
  const release = path.join(soft, urlHash(url));
  mkdirSync(release, { recursive: true });
  writeFileSync(path.join(release, 'instance.cfg'), '[buildout]\nparts =\n');
  writeFileSync(path.join(release, '.completed'), '');
  const stub = path.join(dir, 'stub-buildout');
  // Stands for buildout: makes one program, as a real instance profile would.
  writeFileSync(stub, '#!/bin/sh\nmkdir -p etc/run && printf "#!/bin/sh\\nexec sleep 600\\n" > etc/run/sleeper && chmod 755 etc/run/sleeper\n');
  chmodSync(stub, 0o755);
  const cfg = writeNodeConfig(root, 'slapos.cfg', [`buildout = ${stub}`]);
  const partitions = makePartitions(root, n, (i) => [
    { addr: `10.${(i >> 8) & 255}.${i & 255}.2`, netmask: '255.255.255.255' }, { addr: `fd00::${(i + 2).toString(16)}`, netmask: 'ffff:ffff:ffff:ffff::' },
  ]);
  const { client, stop } = await startMaster(root, cli, cfg, partitions);
  try {
    await client.supplySupply(url, COMPUTER);
    for (let i = 0; i < n; i++) await client.requestComputerPartition(url, `inst${i}`, { parameters: { i: String(i) } }).catch(() => undefined);

    const config = loadConfig(cfg);
    const { log, records, clear } = collectingLogger();
    const run = async () => {
      let out = '';
      const started = performance.now();
      const code = await runInstanceCommand({ config, log, out: (text) => (out = text) }, { now: true, json: true });
      const wall = performance.now() - started;
      const summary = JSON.parse(out) as { processed: string[]; upToDate: string[]; failed: unknown[]; ms: number };
      return { code, wall, summary };
    };
    // supervisord starts once per boot (the first pass that needs it): timed apart, so the pass below is that of a running node.
    const launch = performance.now();
    const { ensureSupervisord } = await import('../src/supervisor/daemon.js');
    const { watchdogOptions } = await import('../src/supervisor/config.js');
    await ensureSupervisord(inst, { log, ...watchdogOptions(config) });
    const launchMs = performance.now() - launch;
    console.log(`supervisord start (once per boot, before the changed pass): ${launchMs.toFixed(0)} ms`);
    const changed = await run();
    console.log(`changed pass: ${n} partitions, exit ${changed.code}, ${changed.summary.processed.length} processed, ${changed.summary.failed.length} failed: ` +
      `${(changed.wall / 1000).toFixed(2)} s, ${(changed.wall / n).toFixed(1)} ms per partition (stub buildout spawn included; supervisord already running)`);
    const failed = changed.summary.failed as Array<{ id: string; error: string }>;
    if (failed.length > 0) console.log(`  first failure: ${failed[0]!.id}: ${failed[0]!.error.split('\n')[0]}`);
    const changedRecords = records();
    const steps = stepTimes(changedRecords);
    console.log(`  mean ms per step: ${stepLine(steps, 1)}`);
    // Our own overhead (issue 29, goal < 50 ms per partition): the pass per partition less the stub buildout's process.
    const own = changed.wall / n - mean(steps.get('buildout') ?? []);
    console.log(`  own overhead per partition (pass less the buildout step): ${own.toFixed(1)} ms (goal < 50 ms: ${own < 50 ? 'met' : `missed by ${(own - 50).toFixed(1)} ms`}); ` +
      `with the supervisord start counted in the pass: ${(own + launchMs / n).toFixed(1)} ms`);
    const updates = changedRecords.filter((r) => r.msg === 'supervisord updated').length;
    console.log(`  supervisord updates in the pass: ${updates} (batched: one per up to 50 changed partitions)`);
    for (let k = 0; k < 3; k++) {
      clear();
      const noop = await run();
      console.log(`  master answered in ${records().find((r) => r.msg === 'master answered')?.duration_ms} ms`);
      console.log(`no-op pass (in process): ${noop.summary.upToDate.length} up to date, exit ${noop.code}: loop ${noop.summary.ms} ms, command ${noop.wall.toFixed(0)} ms`);
    }
    for (let k = 0; k < 3; k++) {
      const t0 = performance.now();
      const body = await client.call('GET', 'getFullComputerInformation', { computer_id: COMPUTER });
      const t1 = performance.now();
      const parsed = await import('../src/slap/marshal-decode.js').then((m) => m.loads(body));
      const t2 = performance.now();
      const { readComputer } = await import('../src/slap/shapes.js');
      readComputer(parsed);
      console.log(`  getFullComputerInformation: ${(body.length / 1024).toFixed(0)} KiB, master answer ${(t1 - t0).toFixed(0)} ms, decode ${(t2 - t1).toFixed(0)} ms, shapes ${(performance.now() - t2).toFixed(0)} ms`);
    }
    const help = performance.now();
    await new Promise((resolve) => execFile(process.execPath, [cli, '--help'], resolve));
    console.log(`baseline: slapos --help ${(performance.now() - help).toFixed(0)} ms wall (node start-up and module loading)`);
    for (let k = 0; k < 2; k++) {
      const whole = await cliWall(cfg);
      const s = JSON.parse(whole.stdout) as { upToDate: string[]; ms: number };
      console.log(`no-op pass (CLI, node start-up included): exit ${whole.status}, ${s.upToDate.length} up to date: ${whole.ms.toFixed(0)} ms wall, loop ${s.ms} ms`);
    }
    // Peak RSS of a no-op CLI pass (issue 29: goal < 80 MiB), from /usr/bin/time, and the modules it loaded.
    for (let k = 0; k < 2; k++) {
      const timed = spawnSync('/usr/bin/time', ['-f', 'maxrss %M', process.execPath, cli, 'node', 'instance', '--now', '-q', '--cfg', cfg],
        { encoding: 'utf8', env: { ...process.env, NODE_DEBUG: 'module' }, maxBuffer: 1 << 28 });
      const rss = Number(/maxrss (\d+)/.exec(timed.stderr)?.[1] ?? Number.NaN) / 1024;
      const modules = new Set([...timed.stderr.matchAll(/load "?(file:\/\/\S+?|\/\S+?\.(?:js|mjs|cjs|node|json))"?/g)].map((m) => m[1])).size;
      console.log(`no-op pass (CLI) peak RSS ${rss.toFixed(1)} MiB (goal < 80 MiB: ${rss < 80 ? 'met' : `missed by ${(rss - 80).toFixed(1)} MiB`}), exit ${timed.status}` +
        `${modules > 0 ? `, ~${modules} CommonJS files loaded (NODE_DEBUG=module; ES modules are not listed)` : ''}`);
    }
    if (extra) await extra({ cfg, dir, inst, n });
    const c = compare(nodeNoop, { label: `no-op node instance, ${n} partitions`, argv: [process.execPath, cli, 'node', 'instance', '--now', '-q', '--cfg', cfg] }, 7);
    const target = n <= 10 ? 250 : n <= 100 ? 350 : 500;
    console.log(`no-op pass (CLI) ${c.ms.toFixed(0)} ms wall, node -e 0 ${c.baselineMs.toFixed(0)} ms, ratio ${c.ratio.toFixed(2)}× (median of ${c.runs} pairs); ` +
      `target < ${target} ms: ${c.ms < target ? 'met' : `missed by ${(c.ms - target).toFixed(0)} ms`}`);
  } finally {
    if (process.env.BENCH_KEEP) {
      await client.close();
      // The master ends with this process; supervisord and the files stay, for profiling runs by hand.
      console.log(`BENCH_KEEP: kept ${dir} and its supervisord; start the master with: node bin/slapos.js proxy start --cfg ${cfg}; ` +
        `clean with: supervisorctl -c ${inst}/etc/supervisord.conf shutdown; rm -rf ${dir}; and rmdir the cgroups ${root.cgroupParent}/slappart* then ${root.cgroupParent}`);
      return;
    }
    await stop();
    await removeBenchRoot(root);
  }
}
