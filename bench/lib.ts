// Shared measuring for the benchmarks: wall time of whole processes, compared
// with `node -e 0` (or any baseline) measured in the same run, alternating
// A B A B so that load changes hit both sides; the figure is the median of the
// pairwise ratios. Benchmarks print; they assert nothing.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import os from 'node:os';
import type { ExecutionContext } from 'ava';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// BENCH_CLI=<another checkout>/bin/slapos.js measures that one (before/after figures on the same machine).
export const cli = process.env.BENCH_CLI ? path.resolve(process.env.BENCH_CLI) : path.join(repo, 'bin', 'slapos.js');

export interface Cmd {
  label: string;
  argv: string[];
  options?: SpawnSyncOptions;
}

export const nodeNoop: Cmd = { label: 'node -e 0', argv: [process.execPath, '-e', '0'] };

export function slapos(label: string, ...args: string[]): Cmd {
  return { label, argv: [process.execPath, cli, ...args] };
}

/** Wall milliseconds of one run; throws when the command fails (a benchmark of a failure is meaningless). */
export function wall(cmd: Cmd, allowFail = false): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(cmd.argv[0]!, cmd.argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 26, ...cmd.options });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (!allowFail && result.status !== 0) {
    throw new Error(`${cmd.label}: exit ${result.status ?? result.signal}: ${String(result.stderr ?? '').slice(0, 2000)}`);
  }
  return ms;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? Number.NaN;
}

export interface Comparison {
  label: string;
  baselineMs: number;
  ms: number;
  ratio: number;
  runs: number;
}

/** Runs `baseline` and `cmd` alternately `rounds` times (after one warm-up each). */
export function compare(baseline: Cmd, cmd: Cmd, rounds = 11): Comparison {
  wall(baseline);
  wall(cmd);
  const a: number[] = [];
  const b: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const x = wall(baseline);
    const y = wall(cmd);
    a.push(x);
    b.push(y);
    ratios.push(y / x);
  }
  return { label: cmd.label, baselineMs: median(a), ms: median(b), ratio: median(ratios), runs: rounds };
}

export function loadLine(): string {
  const [l1, l5, l15] = os.loadavg();
  return `load ${l1!.toFixed(2)} ${l5!.toFixed(2)} ${l15!.toFixed(2)} (${os.cpus().length} CPUs, node ${process.version})`;
}

export function header(what: string): void {
  console.log(`${what} — ${new Date().toISOString()}, ${os.hostname()}, ${loadLine()}`);
}

export function printComparison(c: Comparison, target?: number): void {
  const verdict = target === undefined ? '' : c.ratio <= target ? `  (target ≤ ${target}×: met)` : `  (target ≤ ${target}×: missed by ${((c.ratio / target - 1) * 100).toFixed(0)} %)`;
  console.log(`${c.label.padEnd(40)} ${c.ms.toFixed(0).padStart(6)} ms  vs node -e 0 ${c.baselineMs.toFixed(0).padStart(4)} ms  ratio ${c.ratio.toFixed(2)}×  (median of ${c.runs} pairs)${verdict}`);
}

/** Simple `--key value` / `--flag` parser for benchmark options. */
export function parseArgs(args: readonly string[]): { positional: string[]; opts: Map<string, string> } {
  const positional: string[] = [];
  const opts = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a.startsWith('--')) {
      const next = args[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        opts.set(a.slice(2), next);
        i++;
      } else {
        opts.set(a.slice(2), 'true');
      }
    } else {
      positional.push(a);
    }
  }
  return { positional, opts };
}

type Teardown = () => void | Promise<void>;

/** A stand-in for ava's context for the test helpers a benchmark reuses: their teardowns run at cleanup(), last first. */
export function fakeContext(): { t: ExecutionContext; cleanup: () => Promise<void> } {
  const list: Teardown[] = [];
  const t = { teardown: (fn: Teardown) => list.push(fn) } as unknown as ExecutionContext;
  return { t, cleanup: async () => { for (const fn of list.splice(0).reverse()) await fn(); } };
}
