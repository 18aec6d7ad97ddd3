// Where the node's supervisord keeps its files and the text of its
// configuration (slapgrid.md §7.1). Pure: the caller says whether the legacy
// socket exists.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SlaposConfig } from '../config/load.js';

export interface SupervisordPaths {
  config: string;
  includeDir: string;
  /** The socket in use: sv.sock, or the legacy supervisord.socket when that one exists. */
  socket: string;
  /** sv.sock, also when the legacy socket is in use (a second daemon there must go). */
  newSocket: string;
  legacy: boolean;
  pidFile: string;
  logFile: string;
  varDir: string;
  logDir: string;
  runDir: string;
  etcDir: string;
}

export function supervisordPaths(instanceRoot: string, legacySocketExists: boolean): SupervisordPaths {
  const newSocket = path.join(instanceRoot, 'sv.sock');
  const legacySocket = path.join(instanceRoot, 'supervisord.socket');
  return {
    config: path.join(instanceRoot, 'etc', 'supervisord.conf'),
    includeDir: path.join(instanceRoot, 'etc', 'supervisord.conf.d'),
    socket: legacySocketExists ? legacySocket : newSocket,
    newSocket,
    legacy: legacySocketExists,
    pidFile: path.join(instanceRoot, 'var', 'run', 'supervisord.pid'),
    logFile: path.join(instanceRoot, 'var', 'log', 'supervisord.log'),
    varDir: path.join(instanceRoot, 'var'),
    logDir: path.join(instanceRoot, 'var', 'log'),
    runDir: path.join(instanceRoot, 'var', 'run'),
    etcDir: path.join(instanceRoot, 'etc'),
  };
}

export interface SupervisordConfigOptions {
  /** The watchdog event listener command; omitted when undefined (no watchdog yet). */
  watchdogCommand?: string | undefined;
}

/**
 * supervisord.conf as the reference's template. Differences: `logfile_backups`
 * is spelt as supervisord reads it (the reference's `logfile-backups` is
 * ignored by supervisord), and no `[eventlistener:watchdog]` section is
 * written without a command (the reference writes an empty one).
 */
export function supervisordConfig(paths: SupervisordPaths, options: SupervisordConfigOptions = {}): string {
  const sections = [
    '[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n',
    `[include]\nfiles = ${paths.includeDir}/*.conf\n`,
    `[supervisorctl]\nserverurl = unix://${paths.socket}\n`,
    '[supervisord]\n' +
      'loglevel = info\n' +
      `logfile = ${paths.logFile}\n` +
      'logfile_maxbytes = 50MB\n' +
      'logfile_backups = 10\n' +
      'nodaemon = false\n' +
      `pidfile = ${paths.pidFile}\n` +
      `childlogdir = ${paths.logDir}\n`,
    `[unix_http_server]\nfile = ${paths.socket}\nchmod = 0700\n`,
  ];
  if (options.watchdogCommand) {
    sections.push(
      `[eventlistener:watchdog]\ncommand = ${options.watchdogCommand}\nevents = PROCESS_STATE_EXITED, PROCESS_STATE_FATAL\n`,
    );
  }
  return `# Written by slapos node; changes are overwritten.\n\n${sections.join('\n')}`;
}

/** bin/slapos-watchdog.js of this package (dist/src/supervisor → repository root). */
export const WATCHDOG_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'slapos-watchdog.js');

/** One word of a supervisord command line (it splits with shlex). */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\"'\"'")}'`;
}

/**
 * The [eventlistener:watchdog] command: this Node and this package's
 * watchdog, by absolute paths (supervisord gives it no PATH), reading the
 * same slapos.cfg as the command that writes the configuration.
 */
export function watchdogCommand(configFile: string, node: string = process.execPath, script: string = WATCHDOG_SCRIPT): string {
  return [node, script, '--cfg', path.resolve(configFile)].map(shellWord).join(' ');
}

/**
 * The watchdog option for a node configuration: only when the watchdog can
 * bang (master_url and computer_id set); otherwise it would only crash-loop.
 */
export function watchdogOptions(config: SlaposConfig): SupervisordConfigOptions {
  const { master_url, computer_id } = config.slapos;
  return master_url && computer_id ? { watchdogCommand: watchdogCommand(config.file) } : {};
}

/** What a contained supervisord program needs (docs/design.md, "Containment"). */
export interface ContainedProgram {
  /** slapos-launch (src/native launcherPath). */
  launcher: string;
  /** cgroup.procs files of the partition's group in every hierarchy; empty without cgroups. */
  cgroupProcs: readonly string[];
  uid: number;
  gid: number;
  /** The partition directory: the program's working directory, entered as the user. */
  dir: string;
  /** The program's log in the partition, opened and rotated by a logger that runs as the user. */
  log: string;
  /** Bytes before rotation, and rotated files kept. */
  logMaxBytes: number;
  logBackups: number;
  command: string;
}

/**
 * The supervisord lines of a partition program, contained: supervisord runs
 * (as root) only slapos-launch, a root-owned binary, which joins the
 * partition's cgroup, starts the program's logger as the partition user and
 * drops to that user before exec. No option hands supervisord a path of the
 * partition tree: no `directory` (the launcher enters it as the user), no
 * log file there (`AUTO`: supervisord's own capture, which only receives
 * the launcher's errors, lives in its childlogdir under instance_root/var/log,
 * root's). `%` is doubled (supervisord expands %(...)s).
 */
export function containedProgramLines(p: ContainedProgram): string[] {
  const argv = [
    p.launcher,
    ...p.cgroupProcs.flatMap((file) => ['--cgroup', file]),
    '--uid', String(p.uid), '--gid', String(p.gid), '--init-groups',
    '--chdir', p.dir,
    '--log', p.log, '--log-max', String(p.logMaxBytes), '--log-backups', String(p.logBackups),
    '--', p.command,
  ];
  return [
    `command = ${argv.map(shellWord).join(' ').replaceAll('%', '%%')}`,
    'redirect_stderr = true',
    'stdout_logfile = AUTO',
    'stdout_logfile_maxbytes = 1MB',
    'stdout_logfile_backups = 1',
  ];
}
