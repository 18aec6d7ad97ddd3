// A formatted node in a namespace, our master on the host's loopback, the
// node's supervisord started inside the namespace (so services bind the
// partitions' addresses there), and the CLI run on the host (it reaches the
// in-process master; supervisord is reached through its unix socket).
import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import type { PyRecord } from '../../src/slap/pyvalue.js';
import { SlapClient } from '../../src/slap/client.js';
import { urlHash } from '../../src/software/plan.js';
import { formatCli, formatEnv, inNetnsCommand, type FormatEnv } from '../helpers/format.js';
import { startTestMaster, type TestMaster } from '../helpers/master.js';
import { repoRoot } from '../helpers/system.js';

export interface NodeEnv extends FormatEnv {
  master: TestMaster;
  client: SlapClient;
  instanceRoot: string;
  softwareRoot: string;
  computerId: string;
}

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI on the host, asynchronously (the master answers from this process). */
export function cli(cfg: string, args: string[], timeout = 240_000): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(repoRoot, 'bin', 'slapos.js'), ...args, '--cfg', cfg], {
      encoding: 'utf8', env: { PATH: process.env.PATH }, timeout, maxBuffer: 64 * 1024 * 1024,
    }, (error, stdout, stderr) => resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }));
  });
}

/** The `--json` summary of a `node instance` pass. */
export interface InstanceSummary {
  promiseFailed: { id: string; error: string }[];
  exitCode: number;
  processed: string[];
  upToDate: string[];
  failed: { id: string; error: string; backingOff?: boolean; retryAt?: string }[];
  offline: boolean;
}

/** One `node instance --now --json` pass; summary is undefined when stdout is not its JSON. */
export async function instancePass(cfg: string, ...args: string[]): Promise<CliRun & { summary: InstanceSummary | undefined }> {
  const result = await cli(cfg, ['node', 'instance', '--now', '--json', ...args]);
  let summary: InstanceSummary | undefined;
  try {
    summary = JSON.parse(result.stdout) as InstanceSummary;
  } catch {
    summary = undefined;
  }
  return { ...result, summary };
}

/**
 * A release built by hand under the node's software_root (only `instance.cfg`,
 * marked complete, owned by the software user): `node software` finds it built.
 * Returns its URL.
 */
export function releaseByHand(env: NodeEnv, name: string, instanceCfg: string): string {
  const url = path.join(env.dir, name, 'software.cfg');
  const releasePath = path.join(env.softwareRoot, urlHash(url));
  mkdirSync(releasePath, { recursive: true });
  writeFileSync(path.join(releasePath, 'instance.cfg'), instanceCfg);
  writeFileSync(path.join(releasePath, '.completed'), 'now');
  const soft = statSync(env.softwareRoot);
  for (const f of [releasePath, path.join(releasePath, 'instance.cfg'), path.join(releasePath, '.completed')]) chownSync(f, soft.uid, soft.gid);
  return url;
}

export function setKey(cfg: string, key: string, value: string): void {
  const text = readFileSync(cfg, 'utf8');
  const line = new RegExp(`^${key} = .*$`, 'm');
  writeFileSync(cfg, line.test(text) ? text.replace(line, `${key} = ${value}`) : text.replace('[slapos]\n', `[slapos]\n${key} = ${value}\n`));
}

/** Stops the supervisord of `instanceRoot` (and so its programs) by its pid file. */
export async function stopSupervisord(instanceRoot: string): Promise<void> {
  const pidFile = path.join(instanceRoot, 'var', 'run', 'supervisord.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!(pid > 1)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  for (let i = 0; i < 150; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(100);
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

export async function nodeEnv(t: ExecutionContext, partitions: number, options: { masterLog?: string } = {}): Promise<NodeEnv> {
  const env = formatEnv(t, { kind: 'bridge' }, { partition_amount: String(partitions) });
  const instanceRoot = path.join(env.dir, 'inst');
  const softwareRoot = path.join(env.dir, 'soft');
  // Registered after formatEnv's teardown, so it runs before it (LIFO): users go once their processes are gone.
  t.teardown(() => stopSupervisord(instanceRoot));
  const formatted = await formatCli(env, []);
  // 2 = formatted, master unreachable (it is not in the namespace): reported below instead.
  if (formatted.status !== 0 && formatted.status !== 2) throw new Error(`format failed (${formatted.status}): ${formatted.stderr}`);
  const computerId = 'COMP-TEST';
  const master = await startTestMaster(t, computerId, undefined, undefined, { instanceRoot, computer: computerId }, options.masterLog);
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(JSON.parse(readFileSync(path.join(env.dir, 'slapos.json'), 'utf8')) as PyRecord);
  for (const [key, value] of Object.entries({
    master_url: master.url,
    pidfile_software: path.join(env.dir, 'sr.pid'),
    pidfile_instance: path.join(env.dir, 'cp.pid'),
    // Not the default /opt/slapos/slapgrid-ur.pid: two test files reporting at once would refuse each other.
    pidfile_report: path.join(env.dir, 'ur.pid'),
    instance_min_free_space: '1M',
    software_min_free_space: '1M',
  })) setKey(env.cfg, key, value);
  startSupervisordInNetns(env);
  return { ...env, master, client, instanceRoot, softwareRoot, computerId };
}

/**
 * `slapos node supervisord` in the namespace: the services it starts bind the
 * partitions' addresses there. Entered as every node command of the tests and
 * of scripts/demo.sh is (inNetnsCommand: nsenter --net, the namespace's sysfs,
 * the host's /sys/fs/cgroup): `ip netns exec` would give supervisord an empty
 * /sys/fs/cgroup, where slapos-launch cannot join the partition cgroup the
 * node named (it then refuses to run the program, exit 127).
 */
export function startSupervisordInNetns(env: { netns: string; cfg: string }): void {
  const { command, args, hold } = inNetnsCommand(env.netns, [process.execPath, path.join(repoRoot, 'bin', 'slapos.js'), 'node', 'supervisord', '--cfg', env.cfg]);
  const sv = spawnSync(command, args, { encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH } });
  spawnSync('rmdir', [hold]);
  if (sv.status !== 0) throw new Error(`slapos node supervisord failed: ${sv.stderr}`);
}

/** GET url from inside the namespace. */
export function fetchInNetns(netns: string, url: string): { status: number | null; body: string } {
  const result = spawnSync('ip', ['netns', 'exec', netns, 'curl', '-sS', '-g', '--max-time', '5', url], { encoding: 'utf8', timeout: 10_000 });
  return { status: result.status, body: result.stdout + result.stderr };
}
