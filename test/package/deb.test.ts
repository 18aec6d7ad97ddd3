// The Debian package end to end: scripts/package.sh builds it twice (same
// bytes), then it is installed with dpkg into a fresh Debian 12 root made by
// debootstrap (test/package/debian-root.ts, cached per run), where the test
// runs `slapos --version`, `slapos node config` on the example configuration,
// the native addons on the shipped runtime and `systemd-analyze verify` on the
// installed units; then remove (units disabled, configuration kept), reinstall
// (what was enabled comes back), purge (configuration and the node's state
// gone, partitions' and releases' data kept) and a comparison of the root's
// files with those before the install.
// The package is compressed with zstd here (--compression zstd): xz, the
// default, costs a CPU-minute more and compresses the same tree.
import { execFile as execFileCallback, execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../helpers/paths.js';
import { serialUnless, tempDir } from '../helpers/system.js';
import { aptMirror, debianRoot, dependsOf, fileList, rootUnavailable } from './debian-root.js';

const mirror = aptMirror();
const unavailable = await rootUnavailable(mirror);
const version = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const DEFAULT_UNITS = [
  'slapos-node-format.service', 'slapos-node-supervisord.service', 'slapos-node-software.timer',
  'slapos-node-instance.timer', 'slapos-node-report.timer', 'slapos-node-collect.timer',
];

const execFile = promisify(execFileCallback);

async function packageInto(out: string, tmp: string): Promise<string> {
  const r = await execFile('bash', [path.join(repoRoot, 'scripts', 'package.sh'), '--no-build', '--compression', 'zstd', '--out', out], {
    encoding: 'utf8', env: { ...process.env, TMPDIR: tmp },
  });
  return r.stdout.trim().split('\n').at(-1) as string;
}

/** Runs a command inside the root with a clean environment; returns its status and output. */
function inRoot(root: string, args: string[]): { status: number | null; output: string } {
  const r = spawnSync('chroot', [root, 'env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8', 'DEBIAN_FRONTEND=noninteractive', ...args], {
    encoding: 'utf8', timeout: 300_000,
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** The units of the package enabled in the root (the [Install] symlinks in /etc/systemd/system). */
function enabledLinks(root: string): string[] {
  const dir = path.join(root, 'etc', 'systemd', 'system');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name.endsWith('.wants'))
    .flatMap((e) => readdirSync(path.join(dir, e.name)).filter((n) => n.startsWith('slapos-')).map((n) => `${e.name}/${n} -> ${readlinkSync(path.join(dir, e.name, n))}`))
    .sort();
}

serialUnless(unavailable)('the package builds reproducibly, installs into a fresh Debian 12, runs, is removed and purged without leftovers', async (t) => {
  t.timeout(20 * 60_000, 'a first debootstrap of the run takes minutes');
  await new Promise((resolve) => setTimeout(resolve, 100)); // lets the worker tell ava about the timeout
  const work = tempDir(t, 'slapos-deb-');

  // Same checkout, another temp dir and output: same bytes.
  const deb = await packageInto(path.join(work, 'out1'), mkdtempSync(path.join(work, 'tmp1-')));
  const again = await packageInto(path.join(work, 'out2'), mkdtempSync(path.join(work, 'tmp2-')));
  t.is(path.basename(deb), `slapos-node_${version}_amd64.deb`);
  t.true(readFileSync(deb).equals(readFileSync(again)), 'two builds give the same bytes');
  const control = execFileSync('dpkg-deb', ['-f', deb], { encoding: 'utf8' });
  t.regex(control, new RegExp(`^Version: ${version.replace(/\./g, '\\.')}$`, 'm'));
  const listing = execFileSync('dpkg-deb', ['-c', deb], { encoding: 'utf8', maxBuffer: 64 << 20 }).trim().split('\n');
  t.deepEqual([...new Set(listing.map((l) => l.split(/\s+/)[1]))], ['root/root'], 'every member is owned by root');
  t.is(new Set(listing.map((l) => l.split(/\s+/).slice(3, 5).join(' '))).size, 1, 'every member has the same time');
  for (const member of ['./usr/bin/slapos', './opt/slapos-node/node/bin/node', './opt/slapos-node/node/LICENSE', './etc/opt/slapos/slapos.cfg',
    './opt/slapos-node/build/Release/slapos_native.node', './lib/systemd/system/slapos-node-format.service']) {
    t.true(listing.some((l) => l.endsWith(` ${member}`)), `${member} is in the package`);
  }
  t.false(listing.some((l) => /\/node_modules\/(ava|typescript|esbuild|node-gyp)\//.test(l)), 'no development dependency');
  t.true(execFileSync('dpkg-deb', ['--ctrl-tarfile', deb]).length > 0);
  t.regex(execFileSync('dpkg-deb', ['-I', deb, 'conffiles'], { encoding: 'utf8' }), /^\/etc\/opt\/slapos\/slapos\.cfg$/m);

  // The root.
  const root = path.join(work, 'root');
  mkdirSync(root);
  const cached = await debianRoot(root, mirror as string, ['systemd', ...dependsOf(control)], (m) => t.log(m));
  t.log(`Debian 12 root from ${mirror}${cached ? ' (cached tarball)' : ' (made now, cached for this run)'}`);
  const before = fileList(root);

  // Install: dpkg refuses a package whose Depends the root lacks; apt then finds nothing to fix.
  cpSync(deb, path.join(root, 'tmp', 'slapos-node.deb'));
  const install = inRoot(root, ['dpkg', '-i', '/tmp/slapos-node.deb']);
  t.is(install.status, 0, install.output);
  t.regex(install.output, /units installed, not enabled/);
  const check = inRoot(root, ['apt-get', 'check']);
  t.is(check.status, 0, check.output);
  t.deepEqual(enabledLinks(root), [], 'nothing enabled with the example configuration');

  const versionOut = inRoot(root, ['slapos', '--version']);
  t.is(versionOut.status, 0, versionOut.output);
  t.is(versionOut.output.trim(), `slapos-node ${version} (SLAP protocol of slapos.core 1.24)`);
  const config = inRoot(root, ['slapos', 'node', 'config', '--cfg', '/etc/opt/slapos/slapos.cfg']);
  t.is(config.status, 0, config.output);
  t.regex(config.output, /computer_id/);
  // The shipped runtime loads the shipped addons (ours, better-sqlite3's, netlink's prebuilt one).
  const addons = inRoot(root, ['/opt/slapos-node/node/bin/node', '-e',
    "require('/opt/slapos-node/build/Release/slapos_native.node'); const D = require('/opt/slapos-node/node_modules/better-sqlite3');" +
    " require('/opt/slapos-node/node_modules/netlink'); console.log(new D(':memory:').prepare('select 41 + 1 as x').get().x)"]);
  t.is(addons.output.trim(), '42', addons.output);
  const units = readdirSync(path.join(root, 'lib', 'systemd', 'system')).filter((n) => n.startsWith('slapos-')).map((n) => `/lib/systemd/system/${n}`);
  t.is(units.length, 12);
  const verify = inRoot(root, ['systemd-analyze', 'verify', '--man=no', ...units]);
  t.is(verify.status, 0, verify.output);

  // Configured and enabled by the operator, then "apt remove": units disabled, configuration kept.
  const cfg = path.join(root, 'etc', 'opt', 'slapos', 'slapos.cfg');
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('computer_id = COMP-0000', 'computer_id = COMP-4242'));
  t.is(inRoot(root, ['systemctl', 'enable', ...DEFAULT_UNITS]).status, 0);
  t.is(enabledLinks(root).length, DEFAULT_UNITS.length);
  const remove = inRoot(root, ['dpkg', '--remove', 'slapos-node']);
  t.is(remove.status, 0, remove.output);
  t.deepEqual(enabledLinks(root), [], 'remove disables every unit');
  t.false(existsSync(path.join(root, 'usr', 'bin', 'slapos')));
  t.regex(readFileSync(cfg, 'utf8'), /computer_id = COMP-4242/, 'remove keeps the configuration');

  // Reinstalled: what was enabled is enabled again, the edited configuration stays.
  const reinstall = inRoot(root, ['dpkg', '-i', '/tmp/slapos-node.deb']);
  t.is(reinstall.status, 0, reinstall.output);
  t.is(enabledLinks(root).length, DEFAULT_UNITS.length, enabledLinks(root).join('\n'));
  t.regex(readFileSync(cfg, 'utf8'), /computer_id = COMP-4242/);

  // Purge: data of partitions and releases, and the master's database, are kept.
  const kept = ['srv/slapgrid/slappart0/data.txt', 'opt/slapgrid/0123abcd/bin.txt', 'opt/slapos/proxy.db'];
  for (const rel of kept) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), 'not the package\'s\n');
  }
  writeFileSync(path.join(root, 'opt', 'slapos', 'slapos.xml'), '<computer/>\n');
  const purge = inRoot(root, ['dpkg', '--purge', 'slapos-node']);
  t.is(purge.status, 0, purge.output);
  t.regex(purge.output, /never removed by a purge: the partitions' data/);
  for (const rel of kept) t.true(existsSync(path.join(root, rel)), `${rel} is kept by the purge`);
  t.false(existsSync(path.join(root, 'opt', 'slapos', 'slapos.xml')), "the node's computer description goes");
  t.false(existsSync(path.join(root, 'etc', 'opt', 'slapos')), 'the configuration goes');
  for (const dir of ['srv/slapgrid', 'opt/slapgrid', 'opt/slapos']) rmSync(path.join(root, dir), { recursive: true });
  for (const dir of ['srv', 'opt']) if (!before.has(dir) && existsSync(path.join(root, dir)) && readdirSync(path.join(root, dir)).length === 0) rmSync(path.join(root, dir), { recursive: true });

  const after = fileList(root);
  t.deepEqual([...after].filter((p) => !before.has(p)).sort(), [], 'nothing of the package is left');
  // Except /etc/opt when it is left empty: base-files' postinst makes it, no package lists it, so dpkg
  // removes it with the conffile's directory, after postrm purge could put it back (docs/operations.md).
  t.deepEqual([...before].filter((p) => !after.has(p) && p !== 'etc/opt').sort(), [], 'nothing of the root was removed');
});
