// The systemd units as rendered for this checkout (systemd-analyze verify),
// install-systemd's idempotence, and install.sh under a temporary root.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isRoot, repoRoot, tempDir } from '../helpers/system.js';
import { cli } from './helpers.js';

const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;
const UNITS = [
  'slapos-node-collect.service', 'slapos-node-collect.timer', 'slapos-node-daemon.service', 'slapos-node-format.service',
  'slapos-node-instance.service', 'slapos-node-instance.timer', 'slapos-node-report.service', 'slapos-node-report.timer',
  'slapos-node-software.service', 'slapos-node-software.timer', 'slapos-node-supervisord.service', 'slapos-proxy.service',
];

function verify(dir: string, files: string[]): { status: number | null; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...files.map((f) => `./${f}`)], { cwd: dir, encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test.serial('install-systemd renders every unit for this checkout; a re-run changes nothing', async (t) => {
  const dir = tempDir(t);
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, readFileSync(path.join(repoRoot, 'slapos.cfg.example'), 'utf8'));
  const root = path.join(dir, 'root');
  const first = await cli(['node', 'install-systemd', '--root', root, '--cfg', cfg]).done;
  t.is(first.status, 0, first.stderr);
  const units = path.join(root, 'etc', 'systemd', 'system');
  t.deepEqual(readdirSync(units).sort(), UNITS);
  const boot = readFileSync(path.join(units, 'slapos-node-format.service'), 'utf8');
  t.true(boot.includes(`ExecStart=${process.execPath} ${path.join(repoRoot, 'bin', 'slapos.js')} node boot --cfg ${cfg}\n`));
  t.regex(boot, /^After=network-online\.target$/m);
  t.regex(readFileSync(path.join(units, 'slapos-proxy.service'), 'utf8'), /^ReadWritePaths=-\/opt\/slapos$/m);
  for (const name of UNITS) t.false(/@[A-Z_]+@/.test(readFileSync(path.join(units, name), 'utf8')), `${name} has no placeholder left`);
  const mtimes = UNITS.map((u) => statSync(path.join(units, u)).mtimeMs);
  const second = await cli(['node', 'install-systemd', '--root', root, '--cfg', cfg]).done;
  t.regex(second.stdout, /are up to date/);
  t.deepEqual(UNITS.map((u) => statSync(path.join(units, u)).mtimeMs), mtimes);
});

const analyzeTest = analyze ? test.serial : test.skip;
analyzeTest(`systemd-analyze verify finds nothing in the rendered units, and reports a bad unit${analyze ? '' : ' [skipped: systemd-analyze is not installed (scripts/install-deps.sh installs the systemd package)]'}`, async (t) => {
  const dir = tempDir(t);
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, readFileSync(path.join(repoRoot, 'slapos.cfg.example'), 'utf8'));
  const root = path.join(dir, 'root');
  const rendered = await cli(['node', 'install-systemd', '--root', root, '--cfg', cfg]).done;
  t.is(rendered.status, 0, rendered.stderr);
  const units = path.join(root, 'etc', 'systemd', 'system');
  const result = verify(units, UNITS);
  t.is(result.status, 0, result.output);
  t.is(result.output.trim(), '', 'no warning at all');
  // The check is not vacuous: a unit with a wrong value or a missing binary is reported.
  writeFileSync(path.join(dir, 'slapos-bad.service'), '[Service]\nType=oneshot\nExecStart=/nonexistent/slapos\nProtectHome=maybe\n');
  const bad = verify(dir, ['slapos-bad.service']);
  t.not(bad.status, 0);
  t.regex(bad.output, /protect home|not executable/i);
});

test.serial('install.sh --root: wrapper, configuration, units and links; idempotent; --uninstall keeps the configuration', (t) => {
  const root = tempDir(t);
  const sh = (...args: string[]) => execFileSync(path.join(repoRoot, 'install.sh'), ['--root', root, ...args], { encoding: 'utf8' });
  const out = sh('--no-deps', '--enable');
  t.regex(out, /installed .*usr\/local\/bin\/slapos/);
  const wrapper = path.join(root, 'usr', 'local', 'bin', 'slapos');
  t.is(statSync(wrapper).mode & 0o777, 0o755);
  t.is(readFileSync(wrapper, 'utf8'), `#!/bin/sh\n# slapos-node wrapper (install.sh); runs ${repoRoot}\nexec ${process.execPath} ${repoRoot}/bin/slapos.js "$@"\n`);
  t.regex(execFileSync(wrapper, ['--version'], { encoding: 'utf8' }), /^slapos-node \d+\.\d+\.\d+/);
  const cfg = path.join(root, 'etc', 'opt', 'slapos', 'slapos.cfg');
  t.is(readFileSync(cfg, 'utf8'), readFileSync(path.join(repoRoot, 'slapos.cfg.example'), 'utf8'));
  t.is(statSync(cfg).mode & 0o777, 0o640);
  const units = path.join(root, 'etc', 'systemd', 'system');
  t.deepEqual(readdirSync(units).filter((f) => f.startsWith('slapos')).sort(), UNITS);
  // Units name the real path of the configuration, not the staging root.
  t.regex(readFileSync(path.join(units, 'slapos-node-instance.service'), 'utf8'), / node instance --cfg \/etc\/opt\/slapos\/slapos\.cfg$/m);
  const links = ['multi-user.target.wants/slapos-node-format.service', 'multi-user.target.wants/slapos-node-supervisord.service',
    ...['software', 'instance', 'report', 'collect'].map((l) => `timers.target.wants/slapos-node-${l}.timer`)];
  for (const link of links) t.true(lstatSync(path.join(units, link)).isSymbolicLink(), link);
  t.false(existsSync(path.join(units, 'multi-user.target.wants', 'slapos-proxy.service')));

  // A second run keeps the operator's configuration and rewrites nothing.
  writeFileSync(cfg, '[slapos]\ncomputer_id = COMP-42\n');
  const again = sh('--no-deps', '--enable');
  t.notRegex(again, /^installed/m);
  t.regex(again, /up to date/);
  t.is(readFileSync(cfg, 'utf8'), '[slapos]\ncomputer_id = COMP-42\n');

  const gone = sh('--uninstall');
  t.regex(gone, /kept/);
  t.false(existsSync(wrapper));
  t.deepEqual(readdirSync(units).filter((f) => f.startsWith('slapos')), []);
  for (const link of links) t.false(existsSync(path.join(units, link)), link);
  t.true(existsSync(cfg));
});

test('install.sh refuses unknown options and, without --root, a non-root user', (t) => {
  const r = spawnSync(path.join(repoRoot, 'install.sh'), ['--bogus'], { encoding: 'utf8' });
  t.is(r.status, 1);
  t.regex(r.stderr, /unknown option --bogus/);
  if (!isRoot) {
    const n = spawnSync(path.join(repoRoot, 'install.sh'), ['--no-deps'], { encoding: 'utf8' });
    t.is(n.status, 5);
  }
});
