// The layer order of docs/design.md ("Layers"), checked on the sources: a
// folder of src/ imports only from its own level or below, and nothing but
// src/cli imports src/cli.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/paths.js';

const LEVEL: Record<string, number> = {
  native: 0, vendor: 0, config: 0, util: 0, 'safe-fs': 0,
  network: 1, cgroup: 1, firewall: 1, users: 1, slap: 1, supervisor: 1, executor: 1,
  partition: 2, networkcache: 2,
  'promise-runner': 3, software: 3, format: 3, managers: 3,
  instance: 4, accounting: 4, master: 4,
  node: 5,
  cli: 6,
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

const src = path.join(repoRoot, 'src');

/** [importing file, its folder, imported folder] for every relative import that leaves its folder. */
function crossImports(): [string, string, string][] {
  const out: [string, string, string][] = [];
  for (const file of sources(src)) {
    const from = path.relative(src, file).split(path.sep)[0] as string;
    for (const match of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
      const target = path.relative(src, path.resolve(path.dirname(file), match[1] as string));
      const to = target.split(path.sep)[0] as string;
      if (to !== from && !target.startsWith('..')) out.push([path.relative(repoRoot, file), from, to]);
    }
  }
  return out;
}

test('every folder of src/ has a level', (t) => {
  const folders = readdirSync(src, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  t.deepEqual(folders.filter((f) => LEVEL[f] === undefined), [], 'add the new folder to docs/design.md "Layers" and to LEVEL');
});

test('no import from a lower folder to a higher one; only src/cli imports src/cli', (t) => {
  const imports = crossImports();
  t.true(imports.length > 50, 'the scan found the imports');
  const upward = imports.filter(([, from, to]) => (LEVEL[to] ?? 99) > (LEVEL[from] ?? -1)).map(([file, , to]) => `${file} -> src/${to}`);
  t.deepEqual(upward, []);
  t.deepEqual(imports.filter(([, from, to]) => to === 'cli' && from !== 'cli').map(([file]) => file), []);
  // The master shares the protocol with the node, nothing else of it.
  t.deepEqual(imports.filter(([, from, to]) => from === 'master' && !['slap', 'util', 'config', 'vendor'].includes(to)).map(([file, , to]) => `${file} -> src/${to}`), []);
});

test('execa, undici, zod and pino are imported through src/vendor only (bundled there, docs/performance.md)', (t) => {
  const vendored = readdirSync(path.join(src, 'vendor')).filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, ''));
  const direct: string[] = [];
  for (const file of sources(src)) {
    if (path.relative(src, file).startsWith(`vendor${path.sep}`)) continue;
    // A type-only import loads nothing at run time (pino's types are imported from the package).
    const code = readFileSync(file, 'utf8').replace(/^(?:import|export) type\b[^;]*;/gm, '');
    for (const match of code.matchAll(/(?:from|import)\s*\(?\s*'([^'.][^']*)'/g)) {
      const name = (match[1] as string).split('/')[0] as string;
      if (vendored.includes(name)) direct.push(`${path.relative(repoRoot, file)} -> ${match[1]}`);
    }
  }
  t.deepEqual(direct, []);
});
