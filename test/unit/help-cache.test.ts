// `slapos … --help` from the help records (src/cli/help-cache.ts) prints what
// commander prints from the built tree: every command, aliases included, at
// several terminal widths; the records are not used when older than program.js.
import test from 'ava';
import { Help, type Command } from 'commander';
import { execFileSync } from 'node:child_process';
import { utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildProgram } from '../../src/cli/program.js';
import { helpRecords, helpRequestPath, recordedHelp, renderHelp, HELP_RECORDS_FILE } from '../../src/cli/help-cache.js';
import { repoRoot } from '../helpers/paths.js';
import { tempDir } from '../helpers/system.js';

/** What commander writes for `slapos ...words --help` at this output width. */
async function commanderHelp(words: string[], width: number | undefined): Promise<string> {
  const program = buildProgram();
  let out = '';
  const configure = (command: Command) => {
    command.configureOutput({ writeOut: (s) => { out += s; }, writeErr: (s) => { out += s; }, getOutHelpWidth: () => width as number, getOutHasColors: () => false });
    for (const sub of command.commands) configure(sub);
  };
  configure(program);
  await program.parseAsync(['node', 'slapos', ...words, '--help']).catch((error: { code?: string }) => {
    if (error.code !== 'commander.helpDisplayed') throw error as Error;
  });
  return out;
}

test('every command\'s recorded help is commander\'s, at every width', async (t) => {
  const records = helpRecords(buildProgram());
  const paths = Object.keys(records);
  t.true(paths.length >= 40, `${paths.length} command paths`);
  t.true(paths.includes('') && paths.includes('node format') && paths.includes('node instance'));
  for (const commandPath of paths) {
    for (const width of [undefined, 40, 63, 120, 250]) {
      const words = commandPath === '' ? [] : commandPath.split(' ');
      t.is(renderHelp(records[commandPath]!, width, Help), await commanderHelp(words, width), `slapos ${commandPath} --help at width ${width ?? 'default'}`);
    }
  }
});

test('only a plain help request is answered from the records', (t) => {
  t.is(helpRequestPath(['--help']), '');
  t.is(helpRequestPath(['node', 'format', '-h']), 'node format');
  t.is(helpRequestPath(['node', 'format']), undefined);
  t.is(helpRequestPath(['node', 'format', '--cfg', 'x', '--help']), undefined);
  t.is(helpRequestPath(['request', 'https://x/software.cfg', '--help']), undefined);
});

test('records older than program.js, or an unknown path, leave the answer to commander', (t) => {
  const dir = tempDir(t, 'slapos-help-cache-');
  const cliDir = pathToFileURL(`${dir}/`);
  writeFileSync(path.join(dir, 'program.js'), '');
  writeFileSync(path.join(dir, HELP_RECORDS_FILE), JSON.stringify(helpRecords(buildProgram())));
  const past = new Date(Date.now() - 60_000);
  utimesSync(path.join(dir, 'program.js'), past, past);
  t.regex(recordedHelp('node instance', cliDir, 80) ?? '', /^Usage: slapos node instance \[options\]/);
  t.is(recordedHelp('node no-such-command', cliDir, 80), undefined);
  t.is(recordedHelp('constructor', cliDir, 80), undefined);
  utimesSync(path.join(dir, HELP_RECORDS_FILE), new Date(past.getTime() - 1000), new Date(past.getTime() - 1000));
  t.is(recordedHelp('node instance', cliDir, 80), undefined);
});

test('the slapos command prints the same help as commander (through a pipe: width 80)', async (t) => {
  for (const words of [[], ['node'], ['node', 'instance'], ['proxy', 'start']]) {
    const out = execFileSync(process.execPath, [path.join(repoRoot, 'bin', 'slapos.js'), ...words, '--help'], { encoding: 'utf8' });
    t.is(out, await commanderHelp(words, undefined), `slapos ${words.join(' ')} --help`);
  }
});
