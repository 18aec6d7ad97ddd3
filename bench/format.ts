// Formats N = 100 and 300 partitions (cold, then re-run) in fresh namespaces
// and prints wall time, CPU time and the number of processes format spawned
// (counted with strace in separate runs, so tracing does not skew the times).
import { readFileSync, rmSync } from 'node:fs';
import { formatCli, formatEnv, removeTestCgroups, removeTestUsers, setPartitionAmount, type FormatEnv } from '../test/helpers/format.js';
import { fakeContext, header, median, nodeNoop, parseArgs, wall } from './lib.js';

/** Wall time of one CLI run, and its CPU time read from `time` around node. */
// `wall` includes entering the namespace (nsenter, unshare, mounts); `inner` is node's own wall time, measured by bash.
async function timed(env: FormatEnv): Promise<{ wall: number; inner: number; cpu: number; status: number | null }> {
  const started = process.hrtime.bigint();
  const result = await formatCli(env, [], {}, ['/usr/bin/env', 'TIMEFORMAT=cpu %U %S real %R', 'bash', '-c', 'time "$@"', 'bash']);
  const wall = Number(process.hrtime.bigint() - started) / 1e6;
  const m = /cpu ([\d.]+) ([\d.]+) real ([\d.]+)/.exec(result.stderr);
  return { wall, inner: m ? Number(m[3]) * 1000 : Number.NaN, cpu: m ? (Number(m[1]) + Number(m[2])) * 1000 : Number.NaN, status: result.status };
}

async function counted(env: FormatEnv): Promise<{ total: number; ip: number }> {
  const trace = `/tmp/slapos-bench-${process.pid}.strace`;
  await formatCli(env, [], {}, ['strace', '-f', '-qq', '-e', 'trace=execve', '-e', 'signal=none', '-o', trace]);
  const lines = readFileSync(trace, 'utf8').split('\n').filter((l) => /execve\(/.test(l) && !/= -1 /.test(l));
  rmSync(trace, { force: true });
  // The first execve is node itself.
  return { total: lines.length - 1, ip: lines.filter((l) => /execve\("[^"]*\/ip"/.test(l)).length };
}

async function teardown(env: FormatEnv, cleanup: () => Promise<void>): Promise<void> {
  setPartitionAmount(env, 0); // format's own shrink removes users, taps, dirs, cgroups quickly
  await formatCli(env, []);
  removeTestUsers(env.prefix);
  removeTestCgroups(env.cgroupParent);
  await cleanup();
}

export async function main(args: string[]): Promise<void> {
  const { positional, opts } = parseArgs(args);
  const sizes = positional.length > 0 ? positional.map(Number) : [10, 300];
  const rounds = Number(opts.get('rounds') ?? 5);
  header('slapos node format benchmark (bridge with a veth port, taps, IPv6 ranges; master unreachable)');
  for (const n of sizes) {
    const a = fakeContext();
    const env = formatEnv(a.t, { kind: 'bridge' }, { partition_amount: String(n), ipv4_local_network: '10.9.0.0/16' });
    try {
      const cold = await timed(env);
      const rerun = await timed(env);
      console.log(`N=${n} cold:   wall ${cold.wall.toFixed(0)} ms, cpu ${cold.cpu.toFixed(0)} ms (exit ${cold.status})`);
      console.log(`N=${n} re-run: wall ${rerun.wall.toFixed(0)} ms, cpu ${rerun.cpu.toFixed(0)} ms (exit ${rerun.status})`);
      // Re-runs against node -e 0, alternating; node's own wall (inside the namespace) is what the target is about.
      const inner: number[] = [];
      const ratios: number[] = [];
      const base: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const b = wall(nodeNoop);
        const r = await timed(env);
        base.push(b);
        inner.push(r.inner);
        ratios.push(r.inner / b);
      }
      const target = n <= 10 ? 250 : n >= 300 ? 500 : undefined;
      const med = median(inner);
      console.log(`N=${n} no-op re-run: ${med.toFixed(0)} ms wall (node's own, namespace entry excluded), node -e 0 ${median(base).toFixed(0)} ms, ` +
        `ratio ${median(ratios).toFixed(2)}× (median of ${rounds} pairs)` +
        (target === undefined ? '' : `; target < ${target} ms: ${med < target ? 'met' : `missed by ${(med - target).toFixed(0)} ms`}`));
    } finally {
      await teardown(env, a.cleanup);
    }
    if (opts.has('no-strace')) continue;
    const b = fakeContext();
    const env2 = formatEnv(b.t, { kind: 'bridge' }, { partition_amount: String(n), ipv4_local_network: '10.9.0.0/16' });
    try {
      const cold = await counted(env2);
      const rerun = await counted(env2);
      console.log(`N=${n} processes spawned by format: cold ${cold.total} (ip: ${cold.ip}), re-run ${rerun.total} (ip: ${rerun.ip})`);
    } finally {
      await teardown(env2, b.cleanup);
    }
  }
}
