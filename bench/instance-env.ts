// What both instance benchmarks set up (bench/instance.ts with a stub
// buildout, bench/instance-real.ts with real ones): a scratch directory with
// software and instance roots, N plain partition directories owned by nobody,
// a slapos.cfg, the master as a child process (`slapos proxy start`), a
// logger that keeps the debug lines in memory and the mean time per step.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { CgroupTree } from '../src/cgroup/group.js';
import { detectLayout } from '../src/cgroup/layout.js';
import { SlapClient } from '../src/slap/client.js';
import { createLogger } from '../src/util/log.js';
import { stopSupervisord } from '../test/instance/env.js';

export const NOBODY = 65534;
export const COMPUTER = 'COMP-BENCH';

export interface BenchRoot {
  dir: string;
  inst: string;
  soft: string;
  port: number;
  /** [slapformat] cgroup_parent of the partitions' cgroups (made by makePartitions, as format would). */
  cgroupParent: string;
}

export function benchRoot(prefix: string): BenchRoot {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  const root = { dir, inst: path.join(dir, 'inst'), soft: path.join(dir, 'soft'), port: 20000 + (process.pid % 20000), cgroupParent: `slapos-bench-${process.pid}` };
  mkdirSync(root.inst, { recursive: true });
  mkdirSync(root.soft, { recursive: true, mode: 0o755 });
  return root;
}

/** slapos.cfg for the node and its master; `slapos` adds lines to [slapos]. */
export function writeNodeConfig(root: BenchRoot, name: string, slapos: readonly string[] = []): string {
  const cfg = path.join(root.dir, name);
  writeFileSync(cfg, [
    '[slapos]', `computer_id = ${COMPUTER}`, `master_url = http://127.0.0.1:${root.port}/`, `software_root = ${root.soft}`, `instance_root = ${root.inst}`,
    ...slapos, `pidfile_instance = ${root.dir}/cp.pid`, 'instance_min_free_space = 1M',
    '[slapformat]', `cgroup_parent = ${root.cgroupParent}`,
    '[slapproxy]', 'host = 127.0.0.1', `port = ${root.port}`, `database_uri = ${root.dir}/proxy.db`, `computer_id = ${COMPUTER}`, '',
  ].join('\n'));
  return cfg;
}

function cgroups(root: BenchRoot): CgroupTree | undefined {
  try {
    return new CgroupTree(detectLayout(), root.cgroupParent);
  } catch {
    return undefined; // no hierarchy: runs are contained by process tree (and buildouts exec'd)
  }
}

/** N partition directories owned by nobody, `address(i)` each, with their cgroups; the partition list for the master. */
export function makePartitions(root: BenchRoot, n: number, address: (i: number) => { addr: string; netmask: string }[]) {
  const tree = cgroups(root);
  const partitions = [];
  for (let i = 0; i < n; i++) {
    const id = `slappart${i}`;
    const p = path.join(root.inst, id);
    mkdirSync(p);
    chmodSync(p, 0o750);
    chownSync(p, NOBODY, NOBODY);
    const address_list = address(i);
    writeFileSync(path.join(p, '.slapos-resource'), JSON.stringify({ address_list, reference: id }));
    tree?.create(id);
    partitions.push({ reference: id, address_list, tap: { name: `slaptap${i}` } });
  }
  return partitions;
}

/** The master (`cli proxy start`), answering, with the computer and its partitions loaded. */
export async function startMaster(root: BenchRoot, cli: string, cfg: string, partitions: ReturnType<typeof makePartitions>) {
  const master = spawn(process.execPath, [cli, 'proxy', 'start', '--cfg', cfg], { stdio: 'ignore' });
  const client = new SlapClient(`http://127.0.0.1:${root.port}/`);
  const stop = async () => {
    await client.close();
    master.kill('SIGTERM');
  };
  try {
    for (let i = 0; ; i++) {
      try {
        await client.getFullComputerInformation(COMPUTER);
        break;
      } catch (error) {
        if (i > 100) throw new Error(`the master did not start: ${(error as Error).message}`);
        await sleep(100);
      }
    }
    await client.loadComputerConfigurationFromXML({ reference: COMPUTER, address: '10.0.0.1', netmask: '255.255.255.0', partition_list: partitions });
  } catch (error) {
    await stop();
    throw error;
  }
  return { client, stop };
}

/** Stops the partitions' supervisord, removes their cgroups and the scratch directory. */
export async function removeBenchRoot(root: BenchRoot): Promise<void> {
  await stopSupervisord(root.inst);
  const tree = cgroups(root);
  for (const id of tree ? readdirSync(root.inst).filter((name) => /^slappart\d+$/.test(name)) : []) {
    await tree!.kill(id).catch(() => undefined);
    for (let i = 0; i < 50; i++) {
      try {
        tree!.remove(id);
        break;
      } catch {
        await sleep(20); // tasks still exiting
      }
    }
  }
  try {
    tree?.removeParent();
  } catch {
    // left for a later run's clean-up: named after our pid
  }
  rmSync(root.dir, { recursive: true, force: true });
}

let logDir: string | undefined;
let logFiles = 0;

/**
 * A verbose logger: its human lines kept in memory, its records (JSON, with
 * every field) in a scratch file, read back by `records()`.
 */
export function collectingLogger(): { log: ReturnType<typeof createLogger>; lines: string[]; records: () => Record<string, unknown>[]; clear: () => void } {
  const lines: string[] = [];
  const stderr = new Writable({ write(chunk: Buffer, _e, done) { lines.push(...chunk.toString().split('\n').filter(Boolean)); done(); } });
  logDir ??= mkdtempSync(path.join(tmpdir(), 'slapos-bench-log-'));
  const dir = logDir;
  if (logFiles++ === 0) process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, `log-${logFiles}.jsonl`);
  const records = () => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
  const clear = () => {
    lines.length = 0;
    truncateSync(file);
  };
  return { log: createLogger({ verbose: true, stderr, logFile: file }), lines, records, clear };
}

/** Each step's durations, in ms, from the records ("step done"). */
export function stepTimes(records: readonly Record<string, unknown>[]): Map<string, number[]> {
  const total = new Map<string, number[]>();
  for (const r of records) {
    if (r['msg'] !== 'step done' || typeof r['step'] !== 'string') continue;
    total.set(r['step'], [...(total.get(r['step']) ?? []), Number(r['duration_ms'])]);
  }
  return total;
}

/** How many buildouts were forked by the fork server, and how many exec'd ("buildout ended"). */
export function buildoutVia(records: readonly Record<string, unknown>[]): { forked: number; execd: number } {
  const ended = records.filter((r) => r['msg'] === 'buildout ended');
  return { forked: ended.filter((r) => r['via'] === 'fork-server').length, execd: ended.filter((r) => r['via'] === 'exec').length };
}

/**
 * CPU ms of the reaped descendants of `pid` (cutime + cstime of
 * /proc/<pid>/stat; ours by default): in a pass, the buildouts and promises it
 * ran, less sensitive to the machine's load than wall time. Supervisord and
 * the services are not reaped by us; the buildout fork server is, at the end
 * of the pass (its start-up imports included, and its children's times).
 */
export function childrenCpuMs(pid: number | 'self' = 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): cutime and cstime are fields 16 and 17, in clock ticks (100 Hz on Linux).
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

export const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / Math.max(1, v.length);

/** "name mean, ..." of stepTimes. */
export const stepLine = (steps: Map<string, number[]>, digits = 0) => [...steps].map(([name, v]) => `${name} ${mean(v).toFixed(digits)}`).join(', ');
