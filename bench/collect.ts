// `npm run bench -- collect [--sizes 3,300] [--rounds N]`, as root: the whole
// `slapos node collect` CLI on N partitions (plain directories owned by nobody,
// no processes, a throw-away cgroup parent), wall time and ratio to
// `node -e 0` measured in the same run, then where the time goes in process
// (each systeminformation probe alone). Targets (issue 20): 3 partitions
// < 0.4 s, 300 < 1.5 s.
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { removeTestCgroups } from '../test/helpers/format.js';
import { compare, header, nodeNoop, parseArgs, printComparison, slapos, wall } from './lib.js';

const NOBODY = 65534;

function environment(n: number): { dir: string; cfg: string; cgroupParent: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'slapos-bench-collect-'));
  chmodSync(dir, 0o755);
  const inst = path.join(dir, 'inst');
  mkdirSync(inst);
  for (let i = 0; i < n; i++) {
    const p = path.join(inst, `slappart${i}`);
    mkdirSync(p);
    writeFileSync(path.join(p, '.slapos-resource'), JSON.stringify({ reference: `slappart${i}`, user: { name: 'nobody' } }));
    mkdirSync(path.join(p, 'etc'));
    writeFileSync(path.join(p, 'etc', 'file'), 'x'.repeat(1000));
    chownSync(p, NOBODY, NOBODY);
  }
  const cgroupParent = `slbench${process.pid}`;
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, ['[slapos]', 'computer_id = COMP-BENCH', 'master_url = http://127.0.0.1:1/', `instance_root = ${inst}`,
    `software_root = ${dir}/soft`, '[slapformat]', `cgroup_parent = ${cgroupParent}`, ''].join('\n'));
  return { dir, cfg, cgroupParent };
}

async function probes(): Promise<string> {
  const si = (await import('systeminformation')).default;
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['cpu', () => si.cpu()], ['mem', () => si.mem()], ['fsSize', () => si.fsSize()],
    ['networkStats', () => si.networkStats('*')], ['cpuTemperature', () => si.cpuTemperature()],
  ];
  const out: string[] = [];
  for (const [name, call] of calls) {
    const t = performance.now();
    await call();
    const first = performance.now() - t;
    const t2 = performance.now();
    await call();
    out.push(`${name} ${first.toFixed(0)} ms (again: ${(performance.now() - t2).toFixed(0)} ms)`);
  }
  return out.join(', ');
}

export async function main(args: string[]): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run the collect benchmark as root');
  const { opts } = parseArgs(args);
  const sizes = (opts.get('sizes') ?? '3,300').split(',').map(Number);
  const rounds = Number(opts.get('rounds') ?? 5);
  header('slapos node collect benchmark');
  for (const n of sizes) {
    const env = environment(n);
    try {
      const cmd = slapos(`node collect, ${n} partitions`, 'node', 'collect', '--cfg', env.cfg);
      const first = wall(cmd);
      console.log(`first collect (creates the store, walks every partition), ${n} partitions: ${first.toFixed(0)} ms`);
      const target = n <= 3 ? 400 : n >= 300 ? 1500 : undefined;
      const c = compare(nodeNoop, cmd, rounds);
      printComparison(c);
      if (target !== undefined) console.log(`  target < ${target} ms: ${c.ms < target ? 'met' : `missed by ${(c.ms - target).toFixed(0)} ms`}`);
    } finally {
      removeTestCgroups(env.cgroupParent);
      rmSync(env.dir, { recursive: true, force: true });
    }
  }
  console.log(`systeminformation probes in process (first call, then again): ${await probes()}`);
}
