// The node's supervisord: write its configuration, start it unless one is
// already answering on the socket, wait until it answers (slapgrid.md §7.1–7.2).
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { killPoint } from '../util/kill-point.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../util/log.js';
import { SupervisorClient, SupervisorFault } from './client.js';
import { supervisordConfig, supervisordPaths, type SupervisordConfigOptions, type SupervisordPaths } from './config.js';
import { XmlRpcTransportError } from './xmlrpc.js';
import path from 'node:path';

export const SUPERVISORD = '/usr/bin/supervisord';
export const SUPERVISORCTL = '/usr/bin/supervisorctl';

export function nodeSupervisordPaths(instanceRoot: string): SupervisordPaths {
  return supervisordPaths(instanceRoot, existsSync(path.join(instanceRoot, 'supervisord.socket')));
}

function ensureDir(dir: string, mode: number): void {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, mode);
}

/**
 * The step boundaries of writing the configuration, for the kill hook
 * (src/util/kill-point.ts) and docs/design.md.
 */
export const SUPERVISORD_CONFIG_KILL_POINTS = ['supervisord-config:dirs', 'supervisord-config:temp', 'supervisord-config:renamed'];

/** Creates the directories and (re)writes supervisord.conf (0600) when its content differs. */
export function writeSupervisordConfiguration(instanceRoot: string, options: SupervisordConfigOptions = {}): SupervisordPaths {
  if (!existsSync(instanceRoot)) throw new Error(`[slapos] instance_root = ${instanceRoot} does not exist (run slapos node format first)`);
  const paths = nodeSupervisordPaths(instanceRoot);
  ensureDir(paths.varDir, 0o755);
  for (const dir of [paths.logDir, paths.runDir, paths.etcDir, paths.includeDir]) ensureDir(dir, 0o700);
  const text = supervisordConfig(paths, options);
  let current: string | undefined;
  try {
    current = readFileSync(paths.config, 'utf8');
  } catch {
    current = undefined;
  }
  const tmp = `${paths.config}.tmp`;
  killPoint('supervisord-config:dirs');
  if (current !== text) {
    writeFileSync(tmp, text, { mode: 0o600 });
    chmodSync(tmp, 0o600); // a temp file a killed run left keeps its mode otherwise
    killPoint('supervisord-config:temp');
    renameSync(tmp, paths.config);
    killPoint('supervisord-config:renamed');
  } else {
    rmSync(tmp, { force: true }); // left by a run killed before its rename
  }
  chmodSync(paths.config, 0o600);
  return paths;
}

export type DaemonState = 'running' | 'shutting-down' | 'absent';

/** Asks the daemon behind `socket` for its state; 'absent' when nothing answers. */
export async function probeSupervisord(socket: string, timeout = 2_000): Promise<DaemonState> {
  if (!existsSync(socket)) return 'absent';
  try {
    const state = await new SupervisorClient(socket, timeout).getState();
    if (state.statename === 'RUNNING') return 'running';
    if (state.statename === 'SHUTDOWN') return 'shutting-down';
    return 'absent';
  } catch (error) {
    if (error instanceof SupervisorFault && error.faultName === 'SHUTDOWN_STATE') return 'shutting-down';
    if (error instanceof XmlRpcTransportError) return 'absent';
    throw error;
  }
}

export interface EnsureOptions extends SupervisordConfigOptions {
  log: Logger;
  binary?: string;
}

/**
 * Writes the configuration and starts supervisord unless it is running.
 * supervisord gets an empty environment (as the reference): programs see only
 * their `environment=` line. Resolves to whether it was started now.
 */
export async function ensureSupervisord(instanceRoot: string, options: EnsureOptions): Promise<{ started: boolean; paths: SupervisordPaths }> {
  const { log } = options;
  const paths = writeSupervisordConfiguration(instanceRoot, options);
  if (paths.legacy && (await probeSupervisord(paths.newSocket)) === 'running') {
    // Two daemons would run every program twice: keep the legacy one (§7.1).
    log.fatal({ code: 'TWO_SUPERVISORDS', stopping: paths.newSocket, keeping: paths.socket }, 'We have two supervisord running ! Stopping the one behind the new socket, keeping the legacy one');
    const other = new SupervisorClient(paths.newSocket);
    await other.stopAllProcesses().catch(() => []);
    await other.shutdown().catch(() => false);
  }
  for (let attempt = 1; attempt <= 5; attempt++) {
    const state = await probeSupervisord(paths.socket);
    if (state === 'running') {
      log.info('Supervisord already running.');
      if (options.watchdogCommand) await ensureWatchdog(new SupervisorClient(paths.socket), paths, log);
      return { started: false, paths };
    }
    if (state === 'absent') break;
    await sleep(200 * attempt); // shutting down: let it finish before starting a new one
  }
  log.info({ config: paths.config }, 'starting supervisord');
  const { execa } = await import('../vendor/execa.js'); // only to start it: a pass that finds it running does not load execa
  const result = await execa(options.binary ?? SUPERVISORD, ['-c', paths.config], {
    env: {}, extendEnv: false, reject: false, all: true, stdin: 'ignore', cwd: instanceRoot, timeout: 30_000,
  });
  if (result.failed) throw new Error(`Failed to launch supervisord (${paths.config}):\n${result.all ?? result.message}`);
  // It answers after ~0.2–0.5 s of Python start-up: asked every 25 ms for 2 s (a first pass waits for it), then every 100 ms, 12 s in all.
  for (let i = 0; i < 180; i++) {
    if ((await probeSupervisord(paths.socket)) === 'running') return { started: true, paths };
    await sleep(i < 80 ? 25 : 100);
  }
  throw new Error(`supervisord was started but does not answer on ${paths.socket}; see ${paths.logFile}`);
}

/**
 * A running supervisord gets the watchdog of the configuration just written
 * when it has none, a dead one, or another command line (§7.2).
 * reloadConfig makes supervisord re-read every group file (1,000 at 1,000
 * partitions, in every pass): it is skipped when the watchdog runs and this
 * same supervisord already applied this same supervisord.conf (a marker in
 * the root-only run directory: supervisord's pid and the file's hash).
 */
async function ensureWatchdog(client: SupervisorClient, paths: SupervisordPaths, log: Logger): Promise<void> {
  let running = false;
  try {
    running = ['RUNNING', 'STARTING'].includes((await client.getProcessInfo('watchdog')).statename);
  } catch (error) {
    if (!(error instanceof SupervisorFault)) throw error; // BAD_NAME: no watchdog yet
  }
  const marker = path.join(paths.runDir, 'watchdog.applied');
  const applied = `${await client.getPID()} ${createHash('sha256').update(readFileSync(paths.config)).digest('hex')}\n`;
  if (running && readMarker(marker) === applied) return;
  const changes = await client.reloadConfig();
  if (!running || changes.changed.includes('watchdog')) {
    log.info('(re)starting the watchdog event listener');
    await client.stopProcessGroup('watchdog').catch(() => []);
    await client.removeProcessGroup('watchdog').catch(() => false);
    await client.addProcessGroup('watchdog');
  }
  writeFileSync(marker, applied, { mode: 0o600 });
}

function readMarker(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** `slapos node supervisord -n`: the daemon in the foreground, until it exits. */
export async function runSupervisordForeground(instanceRoot: string, options: EnsureOptions): Promise<number> {
  const paths = writeSupervisordConfiguration(instanceRoot, options);
  if ((await probeSupervisord(paths.socket)) === 'running') throw new Error(`supervisord is already running on ${paths.socket}`);
  const { execa } = await import('../vendor/execa.js');
  const result = await execa(options.binary ?? SUPERVISORD, ['-n', '-c', paths.config], {
    env: {}, extendEnv: false, reject: false, stdio: 'inherit', cwd: instanceRoot,
  });
  return result.exitCode ?? 1;
}
