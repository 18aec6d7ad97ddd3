// Every command of the tree: `slapos <command> --help` prints that command's
// own help, listing each of its options, and the README's status table names it.
// The tree is walked in-process (buildProgram), as main.ts parses it, with
// help output captured instead of written.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../src/cli/program.js';
import { repoRoot } from '../helpers/paths.js';

interface Leaf { words: string[]; command: Command }

function leaves(command: Command, words: string[] = []): Leaf[] {
  return command.commands.flatMap((sub) => {
    const here = [...words, sub.name()];
    return sub.commands.length === 0 ? [{ words: here, command: sub }] : leaves(sub, here);
  });
}

/** What `slapos ...words --help` writes, and the error commander throws for it (exitOverride is set on the whole tree). */
async function help(words: string[]): Promise<{ out: string; code: string | undefined }> {
  const program = buildProgram();
  let out = '';
  const capture = (command: Command) => {
    command.configureOutput({ writeOut: (s) => { out += s; }, writeErr: (s) => { out += s; } });
    for (const sub of command.commands) capture(sub);
  };
  capture(program);
  try {
    await program.parseAsync(['node', 'slapos', ...words, '--help']);
    return { out, code: undefined };
  } catch (error) {
    return { out, code: (error as { code?: string }).code };
  }
}

test('every command shows its own help, with each of its options', async (t) => {
  const all = leaves(buildProgram());
  t.true(all.length >= 40, `${all.length} commands`);
  for (const { words, command } of all) {
    const { out, code } = await help(words);
    const name = words.join(' ');
    t.is(code, 'commander.helpDisplayed', name);
    t.true(out.startsWith(`Usage: slapos ${name} `) || out.startsWith(`Usage: slapos ${name}\n`), `${name}: ${out.slice(0, 80)}`);
    for (const option of command.options) {
      if (option.hidden) continue;
      t.true(out.includes(option.flags), `${name} --help lists ${option.flags}`);
    }
    // Its own summary or description, not its parent's.
    const said = command.description() || command.summary();
    // (Help text is wrapped to the terminal's width: compare with spaces folded.)
    const fold = (text: string) => text.replace(/\s+/g, ' ');
    t.true(said !== '' && fold(out).includes(fold(said).slice(0, 60)), `${name} --help says what it does`);
  }
});

/**
 * The command paths a status-table cell names: code spans starting with
 * `slapos` or a top-level command, `a\|b` alternatives expanded, words up to
 * the first option or argument.
 */
export function namedCommands(table: string, topLevel: ReadonlySet<string>): Set<string> {
  const named = new Set<string>();
  for (const [, span] of table.matchAll(/`([^`]+)`/g)) {
    let words = (span ?? '').trim().split(/\s+/);
    if (words[0] === 'slapos') words = words.slice(1);
    else if (!topLevel.has((words[0] ?? '').split(/\\?\|/)[0] ?? '')) continue;
    let paths: string[][] = [[]];
    for (const word of words) {
      if (!/^[a-z][a-z0-9-]*(\\?\|[a-z][a-z0-9-]*)*$/.test(word)) break;
      paths = paths.flatMap((p) => word.split(/\\?\|/).map((alt) => [...p, alt]));
      for (const p of paths) named.add(p.join(' '));
    }
  }
  return named;
}

test("the README's status table names every command", (t) => {
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('## Status'), readme.indexOf('\n## ', readme.indexOf('## Status') + 1));
  const program = buildProgram();
  const named = namedCommands(table, new Set(program.commands.map((c) => c.name())));
  const missing = leaves(program).map((l) => l.words.join(' ')).filter((name) => !named.has(name));
  t.deepEqual(missing, []);
});

test('namedCommands expands alternatives and stops at options', (t) => {
  const named = namedCommands('| `slapos node start\\|stop ARGS` | `proxy show [-u URI]` | `list` |', new Set(['node', 'proxy']));
  t.deepEqual([...named].sort(), ['node', 'node start', 'node stop', 'proxy', 'proxy show']);
});

test('slapos node <command> builds that command alone, the same as in the whole tree', (t) => {
  const whole = buildProgram().commands.find((c) => c.name() === 'node')!;
  let alone = 0;
  for (const sub of whole.commands) {
    const program = buildProgram(['node', sub.name(), '--now']);
    const node = program.commands.find((c) => c.name() === 'node')!;
    if (node.commands.length !== 1) continue; // this one gets the whole tree
    alone++;
    const built = node.commands[0]!;
    t.is(built.name(), sub.name());
    t.deepEqual(built.options.map((o) => o.flags), sub.options.map((o) => o.flags), sub.name());
    t.is(built.helpInformation(), sub.helpInformation(), sub.name());
  }
  t.true(alone >= 10, `${alone} node commands built alone`);
  t.is(buildProgram(['node', 'instance']).commands.length, 1, 'node instance: only the node family');
  t.true(buildProgram(['node', 'no-such-command']).commands.length > 5, 'an unknown name gets the whole tree');
});
