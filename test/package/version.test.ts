// The version is written once, in package.json, and read from there by
// `slapos --version`, the computer's slapos_version (sent to the master) and
// the master's /metrics (slapos_master_build_info). The Debian package's
// version is checked in deb.test.ts.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { versionInfo, versionRequest } from '../../src/cli/version.js';
import { MasterMetrics } from '../../src/master/metrics.js';
import { projectVersion } from '../../src/util/version.js';
import { repoRoot } from '../helpers/paths.js';

const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string };

test('package.json is the one source of the version', (t) => {
  t.regex(pkg.version, /^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/, 'a semantic version (dpkg orders it as npm does)');
  t.is(projectVersion(), pkg.version);
  t.deepEqual(versionInfo(), { name: pkg.name, version: pkg.version, slap_compatibility: 'slapos.core 1.24' });
  t.is(versionRequest(['--version']), `slapos-node ${pkg.version} (SLAP protocol of slapos.core 1.24)\n`);
});

test("the master's /metrics says which version answers", async (t) => {
  const text = await new MasterMetrics().registry.metrics();
  t.true(text.includes(`slapos_master_build_info{version="${pkg.version}"} 1`), text);
});

test('no other copy of the version in the sources', (t) => {
  const computer = readFileSync(path.join(repoRoot, 'src', 'format', 'computer.ts'), 'utf8');
  t.regex(computer, /slapos_version: projectVersion\(\)/);
  t.false(computer.includes(`'${pkg.version}'`));
});

test('CHANGELOG.md has an entry for this version', (t) => {
  const changelog = readFileSync(path.join(repoRoot, 'CHANGELOG.md'), 'utf8');
  t.regex(changelog, new RegExp(`^## ${pkg.version.replace(/\./g, '\\.')}\\b`, 'm'));
});
