// `slapos … --help` without the command tree. Building the tree means loading
// every command definition (and what they import) only to print one help
// text, which made `--help` 1.5× `node -e 0` against a 1.3× goal. So
// `npm run build` (scripts/bundle-cli.mjs) records, for every command, what
// commander's help is made of before it is wrapped to the terminal (usage,
// description, the terms and descriptions of the arguments, options and
// sub-commands) in help.json; a plain help request is then rendered from that
// record by commander's own Help class (its formatHelp, wrapping included) at
// the width commander would use. Anything else, or a record older than
// program.js (a later `tsc`), goes through commander as before.
// test/cli/help-cache.test.ts renders every command at several widths both ways.
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Command, Help } from 'commander';

interface HelpItem {
  term: string;
  description: string;
  /** commander's help group heading ('Options:', 'Commands:' by default). */
  group: string;
}

/** One command's help before wrapping: what commander's Help methods return for it. */
export interface HelpRecord {
  usage: string;
  description: string;
  padWidth: number;
  arguments: HelpItem[];
  options: HelpItem[];
  commands: HelpItem[];
}

/** Command path ('' for `slapos`, 'node format', aliases included) → its help. */
export type HelpRecords = Record<string, HelpRecord>;

export const HELP_RECORDS_FILE = 'help.json';

/** What each command's --help prints, from the built tree (at build time, and by the test). */
export function helpRecords(program: Command): HelpRecords {
  const records: HelpRecords = {};
  const walk = (cmd: Command, keys: string[]) => {
    const helper = cmd.createHelp();
    if (helper.showGlobalOptions) throw new Error('help records: global options are not recorded');
    const record: HelpRecord = {
      usage: helper.commandUsage(cmd),
      description: helper.commandDescription(cmd),
      padWidth: helper.padWidth(cmd, helper),
      arguments: helper.visibleArguments(cmd).map((a) => ({ term: helper.argumentTerm(a), description: helper.argumentDescription(a), group: '' })),
      options: helper.visibleOptions(cmd).map((o) => ({ term: helper.optionTerm(o), description: helper.optionDescription(o), group: o.helpGroupHeading ?? 'Options:' })),
      commands: helper.visibleCommands(cmd).map((c) => ({ term: helper.subcommandTerm(c), description: helper.subcommandDescription(c), group: c.helpGroup() || 'Commands:' })),
    };
    for (const key of keys) records[key] = record;
    for (const sub of cmd.commands) {
      const names = [sub.name(), ...sub.aliases()];
      walk(sub, keys.flatMap((key) => names.map((name) => (key === '' ? name : `${key} ${name}`))));
    }
  };
  walk(program, ['']);
  return records;
}

/** The command path of a plain help request (`slapos node format --help`), else undefined. */
export function helpRequestPath(args: string[]): string | undefined {
  const last = args.at(-1);
  if (last !== '--help' && last !== '-h') return undefined;
  const names = args.slice(0, -1);
  return names.every((name) => /^[a-z][a-z0-9-]*$/.test(name)) ? names.join(' ') : undefined;
}

type HelpClass = new () => Help;

/**
 * commander's Help class alone (lib/help.js, 24 KB), not the whole package
 * (126 KB): the package does not export that file, so it is required by its
 * path next to the package's main file. undefined when that layout changed.
 */
function loadHelpClass(): HelpClass | undefined {
  try {
    const require = createRequire(import.meta.url);
    const main = require.resolve('commander');
    return (require(path.join(path.dirname(main), 'lib', 'help.js')) as { Help: HelpClass }).Help;
  } catch {
    return undefined;
  }
}

/** The help text of one record at this width, by commander's formatHelp. */
export function renderHelp(record: HelpRecord, helpWidth: number | undefined, HelpImpl: HelpClass): string {
  const helper = new HelpImpl();
  helper.prepareContext({ helpWidth });
  // formatHelp asks the helper about the command, its options and sub-commands: here they answer from the record.
  const items = (list: HelpItem[]) => list.map((item) => ({ ...item, helpGroupHeading: item.group, helpGroup: () => item.group }));
  const cmd = { options: items(record.options), commands: items(record.commands), registeredArguments: items(record.arguments) };
  type Item = HelpItem;
  Object.assign(helper, {
    commandUsage: () => record.usage,
    commandDescription: () => record.description,
    padWidth: () => record.padWidth,
    visibleArguments: () => cmd.registeredArguments,
    visibleOptions: () => cmd.options,
    visibleCommands: () => cmd.commands,
    argumentTerm: (a: Item) => a.term,
    argumentDescription: (a: Item) => a.description,
    optionTerm: (o: Item) => o.term,
    optionDescription: (o: Item) => o.description,
    subcommandTerm: (c: Item) => c.term,
    subcommandDescription: (c: Item) => c.description,
  });
  return helper.formatHelp(cmd as unknown as Command, helper);
}

/**
 * The help text of `commandPath` from the records in `cliDir` when they are
 * at least as new as its program.js; undefined when commander must answer.
 */
export function recordedHelp(commandPath: string, cliDir: URL, helpWidth: number | undefined): string | undefined {
  let records: HelpRecords;
  try {
    const file = new URL(HELP_RECORDS_FILE, cliDir);
    if (statSync(file).mtimeMs < statSync(new URL('program.js', cliDir)).mtimeMs) return undefined;
    records = JSON.parse(readFileSync(file, 'utf8')) as HelpRecords;
  } catch {
    return undefined;
  }
  const record = Object.hasOwn(records, commandPath) ? records[commandPath] : undefined;
  const HelpImpl = record && loadHelpClass();
  return record && HelpImpl ? renderHelp(record, helpWidth, HelpImpl) : undefined;
}
