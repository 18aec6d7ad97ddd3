// `slapos node prune`: the decision (unusedParts) and a run on a real tree in
// a temporary directory, through the command line.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { unusedParts } from '../../src/software/prune.js';
import { BIN } from '../helpers/proxy-process.js';
import { tempDir } from '../helpers/system.js';

const part = (rel: string, ...signatures: string[]) => ({ rel, hash: path.basename(rel), signatures });

test('a part is unused when no text names its hash; a chain used only by unused parts goes in one run', (t) => {
  const parts = [part('gcc/aaa'), part('zlib/bbb'), part('lib/ccc', 'needs /shared/zlib/ddd'), part('zlib/ddd'), part('x/eee', 'uses ccc')];
  const removed = unusedParts(parts, ['[buildout]\nparts = /shared/gcc/aaa/bin/gcc', 'script using bbb']);
  t.deepEqual(removed.map((p) => p.rel), ['x/eee', 'lib/ccc', 'zlib/ddd']);
  t.deepEqual(unusedParts(parts, ['aaa bbb ccc ddd eee']), []);
  t.deepEqual(unusedParts([part('a/self', 'self')], []), [], "a part's own signature naming itself keeps it, as the reference");
});

test('node prune removes unused parts only, reads nested SlapOS trees, --dry-run removes nothing', async (t) => {
  const dir = tempDir(t);
  const shared = path.join(dir, 'shared');
  const software = path.join(dir, 'software');
  const instance = path.join(dir, 'instance');
  for (const rel of ['gcc/used1', 'zlib/bysig', 'lib/unused1', 'lib/nested1', 'lib/chain1', '.hidden/zzz']) mkdirSync(path.join(shared, rel), { recursive: true });
  writeFileSync(path.join(shared, 'gcc/used1/.slapos.recipe.cmmi.signature'), `depends on ${shared}/zlib/bysig`);
  writeFileSync(path.join(shared, 'lib/unused1/.buildout-shared.json'), '{"needs": "chain1"}');
  mkdirSync(path.join(software, 'h1/bin'), { recursive: true });
  writeFileSync(path.join(software, 'h1/.installed.cfg'), `[gcc]\nlocation = ${shared}/gcc/used1\n`);
  writeFileSync(path.join(software, 'h1/bin/binary'), Buffer.from([0xff, 0xfe, 0x00, 0x41]));
  symlinkSync(path.join(dir, 'elsewhere'), path.join(software, 'h1/bin/link'));
  // A SlapOS tree nested in a partition (a "slaprunner"): its software uses lib/nested1.
  const nested = path.join(instance, 'slappart0/srv/runner');
  mkdirSync(path.join(nested, 'software/n1'), { recursive: true });
  writeFileSync(path.join(nested, 'software/n1/.installed.cfg'), `x = ${shared}/lib/nested1\n`);
  writeFileSync(path.join(instance, 'slappart0/etc-slapos.cfg-not-this-name'), 'ignored');
  mkdirSync(path.join(instance, 'slappart0/etc'), { recursive: true });
  writeFileSync(path.join(instance, 'slappart0/etc/slapos.cfg'), `[slapos]\nsoftware_root = ${nested}/software\ninstance_root = ${nested}/instance\n`);
  await execa('mkfifo', [path.join(instance, 'slappart0/fifo')]);
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\nsoftware_root = ${software}\ninstance_root = ${instance}\npidfile_software = ${dir}/sr.pid\n` +
    `shared_part_list =\n  /nonexistent/readonly\n  ${shared}\n`);
  const prune = (...args: string[]) => execa('node', [BIN, 'node', 'prune', '--cfg', cfg, ...args], { reject: false });

  const dry = await prune('--dry-run', '--json');
  t.is(dry.exitCode, 0, dry.stderr);
  t.deepEqual(JSON.parse(dry.stdout), { root: shared, removed: [path.join(shared, 'lib/unused1'), path.join(shared, 'lib/chain1')], dryRun: true });
  t.true(existsSync(path.join(shared, 'lib/unused1')), 'dry run removes nothing');

  writeFileSync(path.join(dir, 'sr.pid'), '1');
  const blocked = await prune();
  t.is(blocked.exitCode, 255);
  t.regex(blocked.stderr, /Cannot prune while software is running/);

  rmSync(path.join(dir, 'sr.pid'));
  const real = await prune();
  t.is(real.exitCode, 0, real.stderr);
  t.regex(real.stderr, /Unused shared parts \.\.\. removed code=PRUNE_UNUSED path=.*lib\/unused1/);
  t.deepEqual(readdirSync(path.join(shared, 'lib')).sort(), ['nested1']);
  t.true(existsSync(path.join(shared, 'gcc/used1')) && existsSync(path.join(shared, 'zlib/bysig')) && existsSync(path.join(shared, '.hidden/zzz')));
  t.false(existsSync(path.join(dir, 'sr.pid')), 'the pid file is released');

  writeFileSync(cfg, `[slapos]\nsoftware_root = ${software}\ninstance_root = ${instance}\n`);
  const none = await prune();
  t.is(none.exitCode, 255);
  t.regex(none.stderr, /No shared_part_list options in slapos config/);
});
