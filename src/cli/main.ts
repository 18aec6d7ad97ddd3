// The `slapos` command: start-up path. Loads nothing but what the request
// needs: `--version` reads package.json only; a plain `--help` the recorded
// help texts (help-cache.ts); every other request loads the
// command tree (commander and the command definitions, program.ts), and a
// command loads its own modules when it runs (docs/performance.md).
import { statSync } from 'node:fs';
import { Exit } from './exit.js';
import { versionRequest } from './version.js';

export async function main(argv: string[] = process.argv): Promise<void> {
  const version = versionRequest(argv.slice(2));
  if (version !== undefined) {
    process.stdout.write(version);
    process.exitCode = Exit.SUCCESS;
    return;
  }
  // A plain `--help` is printed from the help records when they are current (help-cache.ts).
  const last = argv.at(-1);
  if (last === '--help' || last === '-h') {
    const { helpRequestPath, recordedHelp } = await import('./help-cache.js');
    const commandPath = helpRequestPath(argv.slice(2));
    // The width commander uses: the terminal's when stdout is one, else its default (80).
    const text = commandPath === undefined ? undefined : recordedHelp(commandPath, new URL('./', import.meta.url), process.stdout.isTTY ? process.stdout.columns : undefined);
    if (text !== undefined) {
      process.stdout.write(text);
      process.exitCode = Exit.SUCCESS;
      return;
    }
  }
  const { buildProgram, CommanderError } = await loadProgram();
  const program = buildProgram(argv.slice(2));
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      if (['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(error.code)) {
        process.exitCode = Exit.SUCCESS;
      } else if (error.code === 'commander.unknownCommand') {
        process.exitCode = Exit.NOT_ROOT;
      } else if (USAGE_ERRORS.has(error.code)) {
        process.exitCode = SYNTAX_ERROR;
      } else if (error.code === 'commander.executeSubCommandAsync') {
        process.exitCode = error.exitCode;
      } else {
        process.exitCode = error.exitCode === 0 ? Exit.SUCCESS : Exit.FAILURE;
      }
      return;
    }
    throw error;
  }
}

/** Command-line syntax errors (unknown option, missing argument, …): the reference's argparse exits 2 for each. */
const SYNTAX_ERROR = 2;
const USAGE_ERRORS = new Set([
  'commander.unknownOption', 'commander.missingArgument', 'commander.optionMissingArgument', 'commander.excessArguments',
  'commander.invalidArgument', 'commander.missingMandatoryOptionValue', 'commander.conflictingOption',
]);

type Program = typeof import('./program.js');

/**
 * program.bundle.js (scripts/bundle-cli.mjs, run by `npm run build`): the same
 * modules as program.js in one file, which loads faster; used only when it is
 * at least as new as program.js, so a later `tsc` alone never runs a stale tree.
 */
async function loadProgram(): Promise<Program> {
  const bundle = new URL('./program.bundle.js', import.meta.url);
  try {
    if (statSync(bundle).mtimeMs >= statSync(new URL('./program.js', import.meta.url)).mtimeMs) {
      return (await import(bundle.href)) as Program;
    }
  } catch {
    // no bundle: the plain modules
  }
  return import('./program.js');
}
