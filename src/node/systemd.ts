// The systemd units shipped in systemd/, rendered for this installation
// (node binary, where the project is, which slapos.cfg) and installed into
// <root>/etc/systemd/system. Rendering is pure; installing writes only files
// whose content changed, so a re-run is a no-op.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeBeneath } from '../safe-fs/index.js';
import { fileURLToPath } from 'node:url';

/** The repository root (dist/src/node → ../../..). */
export const PROJECT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const TEMPLATE_DIR = path.join(PROJECT_DIR, 'systemd');

export const NODE_TIMERS = ['slapos-node-software.timer', 'slapos-node-instance.timer', 'slapos-node-report.timer', 'slapos-node-collect.timer'];
/** What `--enable` turns on: boot, supervisord and the loops' timers. The master and the daemon are opt-in. */
export const DEFAULT_ENABLED = ['slapos-node-format.service', 'slapos-node-supervisord.service', ...NODE_TIMERS];
export const PROXY_UNIT = 'slapos-proxy.service';
export const DAEMON_UNIT = 'slapos-node-daemon.service';

export interface UnitVars {
  NODE: string;
  PROJECT: string;
  SLAPOS: string;
  CONFIG: string;
  /** "yes", or "read-only" when the code or the configuration lives under a home directory. */
  PROTECT_HOME: string;
  /** ReadWritePaths of the master: "-<dir of the SQLite database>" ("-": may not exist yet). */
  PROXY_DATA_DIR: string;
}

// systemd splits ExecStart on spaces and expands % and $; refusing such paths
// is clearer than quoting them.
const SAFE_PATH = /^\/[A-Za-z0-9._+\-/@:=,]*$/;

export function unitVars(options: { node: string; project: string; configFile: string; databaseUri?: string | undefined }): UnitVars {
  for (const [what, value] of [['node binary', options.node], ['project directory', options.project], ['configuration file', options.configFile]] as const) {
    if (!SAFE_PATH.test(value)) throw new Error(`${what} "${value}": systemd units need an absolute path without spaces, %, $ or quotes`);
  }
  const underHome = [options.node, options.project, options.configFile].some((p) => /^\/(home|root|run\/user)(\/|$)/.test(p));
  const db = options.databaseUri;
  const dataDir = db && !/^postgres(ql)?:/.test(db) && path.isAbsolute(db) ? path.dirname(db) : '/opt/slapos';
  if (!SAFE_PATH.test(dataDir)) throw new Error(`[slapproxy] database_uri "${db}": its directory must be a path without spaces, %, $ or quotes`);
  return {
    NODE: options.node,
    PROJECT: options.project,
    SLAPOS: path.join(options.project, 'bin', 'slapos.js'),
    CONFIG: options.configFile,
    PROTECT_HOME: underHome ? 'read-only' : 'yes',
    PROXY_DATA_DIR: `-${dataDir}`,
  };
}

/** Replaces @NAME@ placeholders; a placeholder left over is a bug in the template. */
export function renderUnit(name: string, template: string, vars: UnitVars): string {
  const text = template.replace(/@([A-Z_]+)@/g, (whole, key: string) => {
    if (!(key in vars)) throw new Error(`${name}: unknown placeholder ${whole}`);
    return vars[key as keyof UnitVars];
  });
  return `# Installed by "slapos node install-systemd" from ${path.join(vars.PROJECT, 'systemd', name)}; re-run it after moving the project.\n${text}`;
}

export function unitNames(templateDir = TEMPLATE_DIR): string[] {
  return readdirSync(templateDir).filter((f) => /^slapos-.*\.(service|timer)$/.test(f)).sort();
}

export function renderUnits(vars: UnitVars, templateDir = TEMPLATE_DIR): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of unitNames(templateDir)) out.set(name, renderUnit(name, readFileSync(path.join(templateDir, name), 'utf8'), vars));
  return out;
}

export function unitDir(root: string): string {
  return path.join(root, 'etc', 'systemd', 'system');
}

/** Writes the units that differ; returns the names written. */
export function installUnits(units: Map<string, string>, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const [name, text] of units) {
    const file = path.join(dir, name);
    if (existsSync(file) && readFileSync(file, 'utf8') === text) continue;
    writeBeneath(dir, name, text, { mode: 0o644 });
    written.push(name);
  }
  return written;
}

export function removeUnits(names: string[], dir: string): string[] {
  const removed: string[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    if (!existsSync(file)) continue;
    rmSync(file);
    removed.push(name);
  }
  return removed;
}

/** Whether this machine booted with systemd (sd_booted()'s test). */
export function systemdRunning(): boolean {
  return existsSync('/run/systemd/system');
}

/**
 * systemctl: against <root> (offline, symlinks only) when root is not "/",
 * else against the running manager (reloaded first) when there is one.
 */
export function systemctl(args: string[], root: string): void {
  const offline = path.resolve(root) !== '/' || !systemdRunning();
  const full = offline ? [`--root=${path.resolve(root)}`, ...args.filter((a) => a !== '--now')] : args;
  execFileSync('systemctl', full, { stdio: ['ignore', 'pipe', 'pipe'] });
}
