// What every command gets: global options, a logger, the configuration
// (loaded on first use, so `--help` and client commands need no slapos.cfg),
// and a wrapper that turns errors into a message and an exit status.
// The configuration loader (zod) and the logger (pino) are imported when a
// command runs, not when the command tree is built: `--help` loads neither.
import type { Command } from 'commander';
import { statSync } from 'node:fs';
import type { SlaposConfig } from '../config/load.js';
import type { Logger } from '../util/log.js';
import { CliError, Exit } from './exit.js';
import { UsageError } from '../util/exit-status.js';
import { nextStepLine } from './hint.js';

export interface GlobalOptions {
  cfg?: string;
  verbose?: boolean;
  quiet?: boolean;
  logFile?: string;
}

export interface CommandContext {
  globals: GlobalOptions;
  log: Logger;
  /** The configuration file in use (--cfg, $SLAPOS_CONFIGURATION, or the default). */
  configFile: string;
  /**
   * The configuration, read once. Its [slapos] computer_id is then bound on every later line
   * (`computer`), unless `bindComputer: false`: the master serves many computers, and each of
   * its request lines names the one it is about.
   */
  config(options?: { bindComputer?: boolean }): SlaposConfig;
  /** Exit 5 unless running as root or [slapos] root_check = false (as the reference). */
  requireRoot(): void;
  out(text: string): void;
  /** The next step, one line, on a terminal only and never with --json (see hint.ts). */
  hint(text: string, json: boolean): void;
}

export type CommandAction = (
  ctx: CommandContext,
  args: string[],
  options: Record<string, unknown>,
) => Promise<number | void> | number | void;

export async function createContext(globals: GlobalOptions, stdout: NodeJS.WritableStream = process.stdout): Promise<CommandContext> {
  const [{ configPath, configWarnings, loadConfig }, { createLogger }] = await Promise.all([import('../config/load.js'), import('../util/log.js')]);
  const log = createLogger({ verbose: globals.verbose, quiet: globals.quiet, logFile: globals.logFile });
  const file = configPath(globals.cfg);
  let config: SlaposConfig | undefined;
  const ctx: CommandContext = {
    globals,
    log,
    configFile: file,
    config(options = {}) {
      if (!config) {
        config = loadConfig(file);
        // Every later line (and child logger) says which computer it is about: --log-file JSON filters by it.
        // (pino appends bindings: a line that also passes `computer` would carry the key twice.)
        if (config.slapos.computer_id && options.bindComputer !== false) log.setBindings({ computer: config.slapos.computer_id });
        for (const warning of configWarnings(config)) log.warn(warning);
      }
      return config;
    },
    requireRoot() {
      const check = config ? config.slapos.root_check : true;
      if (check && process.getuid?.() !== 0) {
        throw new CliError('this command must be run as root (or set [slapos] root_check = false)', Exit.NOT_ROOT);
      }
    },
    out(text) {
      stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    },
    hint(text, json) {
      const line = nextStepLine(text, { json, stream: stdout as { isTTY?: boolean } });
      if (line !== undefined) stdout.write(`${line}\n`);
    },
  };
  return ctx;
}

/** Sets `fn` as the command's action, with error handling and exit status. */
export function defineAction(command: Command, fn: CommandAction): Command {
  return command.action(async (...params: unknown[]) => {
    const self = params[params.length - 1] as Command;
    const globals = self.optsWithGlobals<GlobalOptions>();
    const ctx = await createContext(globals);
    try {
      const status = await fn(ctx, self.args, self.opts());
      process.exitCode = status ?? Exit.SUCCESS;
    } catch (error) {
      process.exitCode = await reportError(ctx.log, error);
    }
  });
}

export async function reportError(log: Logger, error: unknown): Promise<number> {
  const { ConfigError } = await import('../config/load.js');
  if (error instanceof ConfigError) {
    log.error({ code: 'CONFIG_INVALID', path: error.file, err: error }, 'configuration error');
    return Exit.FAILURE;
  }
  if (error instanceof CliError) {
    log.error(error.message);
    return error.exitCode;
  }
  if (error instanceof UsageError) {
    log.error(error.message);
    return Exit.FAILURE;
  }
  // Errors from the domain code carry a message meant for the operator; the
  // stack is for developers (-v).
  // Typed fields (name, code, partition, …) go to --log-file; the human line is the message.
  if (error instanceof Error) log.error({ err: error }, error.message);
  else log.error(String(error));
  if (error instanceof Error && error.stack) log.debug(error.stack);
  return Exit.FAILURE;
}

/**
 * A command's module (`from`: its path from this directory, without `.js`), from
 * its one-file bundle (scripts/bundle-cli.mjs: `<module>.bundle.js`, the module
 * and what it imports, ~100 ES modules otherwise) when that bundle is at least
 * as new as the module; the plain module otherwise (a later `tsc` alone, or no
 * esbuild). context.js is bundled into program.bundle.js in this same
 * directory, so `import.meta.url` points here either way.
 */
export async function importCommandModule<T>(from: string): Promise<T> {
  const plain = new URL(`${from}.js`, import.meta.url);
  const bundle = new URL(`${from}.bundle.js`, import.meta.url);
  try {
    if (statSync(bundle).mtimeMs >= statSync(plain).mtimeMs) return (await import(bundle.href)) as T;
  } catch {
    // no bundle: the plain module
  }
  return (await import(plain.href)) as T;
}
