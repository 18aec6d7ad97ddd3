// Running the real `slapos node format` inside a test namespace, and cleaning
// up everything a run may leave: users and groups by the test prefix, the
// cgroup parent, the namespace, the temporary roots.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { detectLayout, groupDirectories, type CgroupLayout } from '../../src/cgroup/layout.js';
import { recordCreated } from './registry.js';
import { createNetns, deleteAccount, repoRoot, run, tempDir, testName } from './system.js';

export interface FormatEnv {
  netns: string;
  prefix: string;
  dir: string;
  cfg: string;
  cgroupParent: string;
}

/** Removes users and groups whose names start with `prefix` (test-made only). */
export function removeTestUsers(prefix: string): void {
  const names = (file: string) => readFileSync(file, 'utf8').split('\n').map((l) => l.split(':')[0] ?? '').filter((n) => n.startsWith(prefix));
  for (const user of names('/etc/passwd')) deleteAccount('user', user);
  for (const group of names('/etc/group')) deleteAccount('group', group);
}

/** The host's cgroup layout, or null when it has none (then there is nothing to remove). */
function hostLayout(): CgroupLayout | null {
  try {
    return detectLayout();
  } catch {
    return null;
  }
}

/**
 * Where a partition's group lives for one controller, on the layout this host
 * has: <mount of the controller>/<parent>/<partition> on the hybrid layout,
 * <cgroup2 root>/<parent>/<partition> on the unified one.
 */
export function partitionGroupDir(env: FormatEnv, partition: string, controller: 'cpu' | 'memory' | 'pids'): string {
  const layout = detectLayout();
  if (layout.kind === 'unified') return path.join(layout.root, env.cgroupParent, partition);
  const mount = layout.mounts.get(controller);
  if (mount === undefined) throw new Error(`the ${controller} controller is not mounted on this hybrid host`);
  return path.join(mount, env.cgroupParent, partition);
}

export function removeTestCgroups(parent: string): void {
  const layout = hostLayout();
  if (layout === null) return;
  for (const dir of groupDirectories(layout, parent)) {
    let children: string[] = [];
    try {
      children = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch {
      continue;
    }
    for (const child of children) spawnSync('rmdir', [path.join(dir, child)]);
    try {
      rmdirSync(dir);
    } catch {
      // not there
    }
  }
}

export interface NetSetup {
  /** "bridge": a bridge with a veth port (carrier); "veth": a plain veth as the interface. */
  kind: 'bridge' | 'veth';
  /** The interface's addresses (default fd00:1234:5678:9abc::1/64 and 10.9.0.1/24). */
  ipv6?: string;
  ipv4?: string;
}

/** A namespace with an interface "slapif0" holding fd00:1234:5678:9abc::1/64 and 10.9.0.1/24. */
export function formatEnv(t: ExecutionContext, net: NetSetup, slapformat: Record<string, string>): FormatEnv {
  const netns = createNetns(t);
  const prefix = testName('slt');
  const dir = tempDir(t, 'slapos-format-');
  chmodSync(dir, 0o755); // partition users must reach their own directory
  const cgroupParent = `${prefix}cg`;
  t.teardown(() => {
    removeTestUsers(prefix);
    removeTestCgroups(cgroupParent);
  });
  const ip = (...args: string[]) => run('ip', ['-n', netns, ...args]);
  if (net.kind === 'bridge') {
    ip('link', 'add', 'slapif0', 'type', 'bridge');
    ip('link', 'add', 'port0', 'type', 'veth', 'peer', 'name', 'port0p');
    ip('link', 'set', 'port0', 'master', 'slapif0');
    ip('link', 'set', 'port0', 'up');
    ip('link', 'set', 'port0p', 'up');
  } else {
    ip('link', 'add', 'slapif0', 'type', 'veth', 'peer', 'name', 'slapif0p');
    ip('link', 'set', 'slapif0p', 'up');
  }
  ip('link', 'set', 'slapif0', 'up');
  ip('addr', 'add', net.ipv6 ?? 'fd00:1234:5678:9abc::1/64', 'dev', 'slapif0', 'nodad');
  ip('addr', 'add', net.ipv4 ?? '10.9.0.1/24', 'dev', 'slapif0');
  const cfg = path.join(dir, 'slapos.cfg');
  const keys: Record<string, string> = {
    partition_amount: '10',
    interface_name: 'slapif0',
    ipv4_local_network: '10.9.0.0/24',
    create_tap: 'true',
    tap_base_name: `${prefix}t`,
    partition_base_name: `${prefix}p`,
    user_base_name: `${prefix}u`,
    software_user: `${prefix}s`,
    computer_xml: path.join(dir, 'slapos.xml'),
    computer_json: path.join(dir, 'slapos.json'),
    cgroup_parent: cgroupParent,
    ...slapformat,
  };
  writeFileSync(
    cfg,
    `[slapos]\ncomputer_id = COMP-TEST\nmaster_url = http://127.0.0.1:9\nsoftware_root = ${dir}/soft\ninstance_root = ${dir}/inst\n` +
      `certificate_repository_path = ${dir}/certs\n\n[slapformat]\n${Object.entries(keys).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`,
  );
  return { netns, prefix, dir, cfg, cgroupParent };
}

export function setPartitionAmount(env: FormatEnv, amount: number): void {
  writeFileSync(env.cfg, readFileSync(env.cfg, 'utf8').replace(/^partition_amount = \d+$/m, `partition_amount = ${amount}`));
}

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in the namespace. Like `ip netns exec`, it mounts a sysfs of the
 * namespace on /sys (tap ownership is read there), but in a private mount
 * namespace that keeps the host's /sys/fs/cgroup, which `ip netns exec` hides.
 */
export function formatCli(
  env: FormatEnv, args: string[], extraEnv: Record<string, string> = {}, wrapper: string[] = [], spawned?: (child: ChildProcess) => void,
): Promise<CliResult> {
  return nodeCli(env, ['node', 'format', '--cfg', env.cfg, '--now', ...args], extraEnv, wrapper, spawned);
}

/**
 * The one way a node command enters a test namespace, as scripts/demo.sh's
 * in_ns does: nsenter --net, then a private mount namespace with a sysfs of
 * the namespace on /sys (tap ownership, /sys/class/net) and the host's
 * /sys/fs/cgroup bound back on it (`ip netns exec` would leave it empty, and
 * slapos-launch could not join the partition's cgroup). `hold` is a
 * temporary directory to rmdir once the command has started or ended.
 */
export function inNetnsCommand(netns: string, argv: string[]): { command: string; args: string[]; hold: string } {
  const hold = mkdtempSync('/tmp/sltcg-');
  recordCreated('dir', hold);
  const script =
    'mount --rbind /sys/fs/cgroup "$0" && mount -t sysfs sysfs /sys && mount --rbind "$0" /sys/fs/cgroup && umount -l "$0" && ' +
    'exec "$@"';
  return { command: 'nsenter', args: [`--net=/run/netns/${netns}`, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script, hold, ...argv], hold };
}

/**
 * Any CLI command in the namespace, the same way as formatCli. `spawned` gets
 * the child, whose pid becomes node's own once the wrappers have exec'd
 * (nsenter and unshare without --fork, then sh's exec): a SIGKILL to it is one
 * to the command, or to its wrappers before it started.
 */
export function nodeCli(
  env: Pick<FormatEnv, 'netns'>, args: string[], extraEnv: Record<string, string> = {}, wrapper: string[] = [], spawned?: (child: ChildProcess) => void,
): Promise<CliResult> {
  const { command, args: argv, hold } = inNetnsCommand(env.netns, [...wrapper, process.execPath, path.join(repoRoot, 'bin', 'slapos.js'), ...args]);
  const child = spawn(command, argv, { env: { ...process.env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  spawned?.(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    child.on('close', (status, signal) => {
      spawnSync('rmdir', [hold]);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** `ip -json` in the namespace (tests may use ip; the product may not). */
export function ipJson<T>(netns: string, ...args: string[]): T {
  return JSON.parse(run('ip', ['-n', netns, '-json', ...args]) || '[]') as T;
}

export function dryRunSteps(result: CliResult): { kind: string }[] {
  if (result.status !== 0) throw new Error(`dry run failed (${result.status}): ${result.stderr}`);
  return (JSON.parse(result.stdout) as { steps: { kind: string }[] }).steps;
}
