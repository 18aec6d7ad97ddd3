// lib/buildout-launcher.py's start-up shortcuts (issue 31, docs/performance.md):
// they must not change what buildout finds. Real Debian zc.buildout, as ourselves.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BUILDOUT_LAUNCHER, SYSTEM_PYTHON } from '../../src/software/buildout.js';
import { repoRoot } from '../helpers/system.js';

// As a partition user runs it: nobody when we are root (root can write the system directories, so
// the launcher lists them every time for root).
const NOBODY = 65534;
const asUser = process.getuid?.() === 0 ? { uid: NOBODY, gid: NOBODY } : {};
const python = (code: string, cwd: string, user: { uid?: number; gid?: number } = asUser) =>
  spawnSync(SYSTEM_PYTHON, ['-c', code], { cwd, encoding: 'utf8', env: { HOME: cwd, PYTHONNOUSERSITE: 'true' }, ...user });

test('the distribution cache lists the interpreter\'s directories once, and any other directory every time', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'slapos-launcher-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const eggs = path.join(dir, 'eggs');
  mkdirSync(eggs);
  if (asUser.uid !== undefined) {
    chmodSync(dir, 0o755);
    chownSync(eggs, asUser.uid, asUser.gid);
  }
  // The launcher without running buildout (run_name is not __main__); then: a system
  // directory scanned twice gives the same objects, an eggs directory sees an egg added between scans.
  const code = [
    'import json, os, runpy, sys',
    `runpy.run_path(${JSON.stringify(BUILDOUT_LAUNCHER)}, run_name="launcher")`,
    'import pkg_resources',
    'system = [p for p in sys.path[1:] if os.path.isdir(p) and list(pkg_resources.find_distributions(p))][0]',
    'same = list(pkg_resources.find_distributions(system)) == list(pkg_resources.find_distributions(system))',
    'first = pkg_resources.find_distributions(system)',
    'identical = all(a is b for a, b in zip(first, pkg_resources.find_distributions(system)))',
    `eggs = ${JSON.stringify(eggs)}`,
    'before = [d.project_name for d in pkg_resources.Environment([eggs])._distmap.values() for d in d]',
    'os.makedirs(os.path.join(eggs, "demo-1.0.egg", "EGG-INFO"))',
    'open(os.path.join(eggs, "demo-1.0.egg", "EGG-INFO", "PKG-INFO"), "w").write("Metadata-Version: 1.0\\nName: demo\\nVersion: 1.0\\n")',
    'after = sorted(pkg_resources.Environment([eggs]))',
    'import doctest, zc.buildout.rmtree',
    'print(json.dumps({"same": same, "identical": identical, "before": before, "after": after, "doctest": callable(doctest.testmod)}))',
  ].join('\n');
  const result = python(code, dir);
  t.is(result.status, 0, result.stderr);
  const out = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as { same: boolean; identical: boolean; before: string[]; after: string[]; doctest: boolean };
  t.true(out.same);
  t.true(out.identical, 'a system directory is listed once per run');
  t.deepEqual(out.before, []);
  t.deepEqual(out.after, ['demo'], 'an egg added to a directory outside the interpreter\'s path is found');
  t.true(out.doctest, 'doctest, loaded lazily, works when used');
  if (asUser.uid !== undefined) {
    // Root could write those directories: listed again each time.
    const root = python(code.replace('demo-1.0.egg', 'demo-2.0.egg'), dir, {});
    t.is(root.status, 0, root.stderr);
    t.false((JSON.parse(root.stdout.trim().split('\n').at(-1)!) as { identical: boolean }).identical);
  }
});

test('a no-change update through the launcher: parts kept in .installed.cfg, exit 0; a bad profile still fails', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'slapos-launcher-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The example release (one egg from its own dist/, offline): two parts to install, then to update.
  writeFileSync(path.join(dir, 'buildout.cfg'), `[buildout]\nextends = ${path.join(repoRoot, 'examples', 'hello-http', 'software.cfg')}\n`);
  const run = () => spawnSync(SYSTEM_PYTHON, [BUILDOUT_LAUNCHER, '-U', '-c', 'buildout.cfg'], { cwd: dir, encoding: 'utf8', env: { HOME: dir, PYTHONNOUSERSITE: 'true' } });
  const first = run();
  t.is(first.status, 0, first.stderr);
  const installed = readFileSync(path.join(dir, '.installed.cfg'), 'utf8');
  const second = run();
  t.is(second.status, 0, second.stderr);
  t.regex(installed, /\[hello-server\][\s\S]*\[instance-profile\]/);
  t.regex(second.stdout + second.stderr, /Updating instance-profile/);
  // zc.buildout 2.13 appends [buildout] sections on an update (with or without our shortcuts,
  // byte for byte the same: docs/performance.md); what was installed is left as it was.
  t.true(readFileSync(path.join(dir, '.installed.cfg'), 'utf8').startsWith(installed));
  writeFileSync(path.join(dir, 'buildout.cfg'), '[buildout]\nparts = nope\noffline = true\n[nope]\nrecipe = no.such.recipe\n');
  const bad = run();
  t.not(bad.status, 0);
  t.regex(bad.stdout + bad.stderr, /no\.such\.recipe/);
});
