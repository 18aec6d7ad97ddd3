// Real kernel objects for integration tests: network namespaces, users,
// a private tun clone device. Everything made here is registered for removal
// with t.teardown, so it goes away even when the test fails.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext, type ImplementationFn } from 'ava';
import { repoRoot } from './paths.js';
import { recordCreated } from './registry.js';

/** Root of the repository (tests run from dist/test/...). */
export { repoRoot };

/** Prefix of every test-made name: "slt" + random, short enough for interface and user names. */
export function testName(prefix = 'slt'): string {
  const name = `${prefix}${randomBytes(3).toString('hex')}`;
  recordCreated('prefix', name);
  return name;
}

export const isRoot = process.getuid?.() === 0;

/** True while the process exists and is not a zombie (a killed child not yet reaped is dead). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/**
 * A serial test that runs when `reason` is null, and otherwise shows as a
 * visible skip whose title ends with why it cannot run on this machine
 * (ava skips are decided when the test is declared, so decide here, not
 * with an early `return` in the body).
 */
export function serialUnless(reason: string | null): (title: string, impl: ImplementationFn<[]>) => void {
  return (title, impl) => {
    if (reason === null) test.serial(title, impl);
    else test.skip(`${title} [skipped: ${reason}]`, impl);
  };
}

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Creates a network namespace, removed at teardown. Returns its name. */
export function createNetns(t: ExecutionContext): string {
  const name = testName('sltns');
  recordCreated('netns', name);
  run('ip', ['netns', 'add', name]);
  t.teardown(() => {
    spawnSync('ip', ['netns', 'del', name]);
  });
  run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return name;
}

// userdel: 1 and 10 = a file could not be locked or written, 8 = a process of
// the user still runs; groupdel: 8 = still a user's primary group, 10 = locked.
const RETRIED_EXIT = { user: new Set([1, 8, 10]), group: new Set([8, 10]) };

/**
 * userdel/groupdel of a name this test made, retried for a while: a test
 * beside this one may hold the user database (format commits, kill tests
 * whose next run clears their lock) or a process of the user may be exiting.
 * Returns false, and says why on stderr, when the name could not be removed.
 */
export function deleteAccount(kind: 'user' | 'group', name: string, timeoutMs = 20_000): boolean {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
    const done = spawnSync(kind === 'user' ? 'userdel' : 'groupdel', [name], { encoding: 'utf8' });
    if (done.status === 0 || done.status === 6) return true; // 6: no such name (already gone)
    if (!RETRIED_EXIT[kind].has(done.status ?? -1) || Date.now() > deadline) {
      process.stderr.write(`# test clean-up: ${kind === 'user' ? 'userdel' : 'groupdel'} ${name} failed (${done.status}): ${done.stderr.trim()}\n`);
      return false;
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delay);
  }
}

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
}

/** Creates a system user with its own group, removed at teardown. */
export function createUser(t: ExecutionContext): TestUser {
  const name = testName('sltu');
  recordCreated('user', name);
  recordCreated('group', name);
  run('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', name]);
  t.teardown(() => {
    deleteAccount('user', name);
    deleteAccount('group', name);
  });
  const uid = Number(run('id', ['-u', name]).trim());
  const gid = Number(run('id', ['-g', name]).trim());
  return { name, uid, gid };
}

export function tempDir(t: ExecutionContext, prefix = 'slapos-test-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  recordCreated('dir', dir);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A private tun clone device node, mode 0666, so that unprivileged test users
 * can reach the tun driver (this machine's /dev/net/tun is 0600; Debian's
 * default is 0666). The driver's own owner check is what the tests exercise.
 */
export function privateTunDevice(t: ExecutionContext): string {
  const dir = tempDir(t, 'slapos-tun-');
  chmodSync(dir, 0o755);
  const device = path.join(dir, 'tun');
  run('mknod', ['-m', '0666', device, 'c', '10', '200']);
  return device;
}

export interface ScriptResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs an ES module snippet with node inside a namespace (`ip netns exec`,
 * which also gives it the namespace's view of /sys), optionally as a user.
 * `NATIVE` in the snippet is the absolute URL of src/native/index.js.
 */
export function runInNetns(netns: string, code: string, user?: TestUser): ScriptResult {
  const nativeUrl = new URL(`file://${path.join(repoRoot, 'dist', 'src', 'native', 'index.js')}`).href;
  const script = code.replaceAll('NATIVE', JSON.stringify(nativeUrl));
  const asUser = user
    ? ['setpriv', `--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--inh-caps=-all']
    : [];
  const result = spawnSync('ip', ['netns', 'exec', netns, ...asUser, process.execPath, '--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** runInNetns, expecting success and a JSON line on stdout. */
export function jsonInNetns<T>(netns: string, code: string, user?: TestUser): T {
  const result = runInNetns(netns, code, user);
  if (result.status !== 0) throw new Error(`script failed (${result.status}): ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}
