// A fresh Debian 12 root for the package test, made with debootstrap from the
// mirror this machine's apt uses. Making one takes minutes (download, then
// installing ~150 packages), so the result is cached as a tarball in the temp
// directory, keyed by the mirror, the suite, the packages and
// SLAPOS_TEST_RUN_ID (CI sets it per run to never reuse an older run's root):
// the first test of a run pays, the others extract it in seconds.
import { execFile as execFileCallback, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

// Asynchronous: the test's worker must stay responsive to ava during minutes of debootstrap.
const execFile = promisify(execFileCallback);

export const SUITE = 'bookworm';

/** The first http(s) mirror of `suite` in /etc/apt/sources.list and sources.list.d (one-line and deb822 formats). */
export function aptMirror(suite = SUITE, etc = '/etc/apt'): string | undefined {
  const files = [path.join(etc, 'sources.list')];
  const dir = path.join(etc, 'sources.list.d');
  if (existsSync(dir)) files.push(...readdirSync(dir).sort().map((f) => path.join(dir, f)));
  for (const file of files) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    if (file.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'mi').exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
        if (!field('Types').includes('deb') || !field('Suites').includes(suite)) continue;
        const uri = field('URIs').find((u) => /^https?:\/\//.test(u));
        if (uri) return uri.replace(/\/$/, '');
      }
    } else {
      for (const line of text.split('\n')) {
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(https?:\/\/\S+)\s+(\S+)/.exec(line.trim());
        if (m && m[2] === suite) return (m[1] as string).replace(/\/$/, '');
      }
    }
  }
  return undefined;
}

/** Why a root cannot be made here, or null. */
export async function rootUnavailable(mirror: string | undefined): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'needs root (debootstrap, chroot)';
  for (const tool of ['debootstrap', 'chroot', 'dpkg-deb', 'tar']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed (apt install debootstrap)`;
  }
  if (!mirror) return `no http mirror of ${SUITE} in /etc/apt/sources.list*`;
  try {
    const response = await fetch(`${mirror}/dists/${SUITE}/Release`, { method: 'HEAD', signal: AbortSignal.timeout(10_000) });
    if (!response.ok) return `the mirror ${mirror} answers ${response.status} for ${SUITE}`;
  } catch (error) {
    return `the mirror ${mirror} is unreachable (${(error as Error).message})`;
  }
  return null;
}

/** The package names of a control file's Depends (alternatives and versions dropped: the first of each). */
export function dependsOf(control: string): string[] {
  const line = /^Depends:\s*(.*)$/m.exec(control)?.[1] ?? '';
  return line.split(',').map((d) => d.split('|')[0]!.trim().split(/[\s(]/)[0]!).filter(Boolean);
}

/**
 * Extracts a Debian 12 root with `packages` installed into `target` (an empty
 * directory), making and caching it first when needed. Returns whether the
 * cache was used.
 */
export async function debianRoot(target: string, mirror: string, packages: string[], log: (message: string) => void): Promise<boolean> {
  const key = createHash('sha256').update(JSON.stringify([mirror, SUITE, [...packages].sort(), process.env['SLAPOS_TEST_RUN_ID'] ?? ''])).digest('hex').slice(0, 16);
  const cacheDir = path.join(tmpdir(), `slapos-debootstrap-${key}`);
  const rootTar = path.join(cacheDir, 'root.tar');
  const cached = existsSync(rootTar);
  if (!cached) {
    mkdirSync(cacheDir, { recursive: true });
    const debs = path.join(cacheDir, 'debs.tgz');
    const include = `--include=${packages.join(',')}`;
    // Private working names, renamed into place when complete: a concurrent or killed run never sees a half-made file.
    if (!existsSync(debs)) {
      log(`debootstrap: downloading ${SUITE} minbase + ${packages.length} packages from ${mirror} into ${debs}`);
      const download = mkdtempSync(path.join(cacheDir, 'download-'));
      await execFile('debootstrap', ['--variant=minbase', include, `--make-tarball=${download}.tgz`, SUITE, download, mirror]);
      rmSync(download, { recursive: true, force: true });
      renameSync(`${download}.tgz`, debs);
    }
    const staging = mkdtempSync(path.join(cacheDir, 'staging-'));
    log('debootstrap: installing the root (minutes, once per cache key)');
    try {
      await execFile('debootstrap', ['--variant=minbase', include, `--unpack-tarball=${debs}`, SUITE, staging, mirror]);
      await execFile('chroot', [staging, 'apt-get', 'clean']);
      await execFile('tar', ['--numeric-owner', '-cpf', `${staging}.tar`, '-C', staging, '.']);
      renameSync(`${staging}.tar`, rootTar);
    } finally {
      await unmountBeneath(staging); // debootstrap mounts /proc there and leaves it when it fails
      rmSync(staging, { recursive: true, force: true });
    }
  }
  await execFile('tar', ['--numeric-owner', '-xpf', rootTar, '-C', target]);
  return cached;
}

/** Unmounts what is mounted beneath `dir`, deepest first (never `dir`'s parents). */
async function unmountBeneath(dir: string): Promise<void> {
  const points = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((p) => p.startsWith(`${dir}/`));
  for (const point of points.sort().reverse()) await execFile('umount', [point]);
}

/** Every path under `root` (relative), without the kernel's, the package managers' and the logs' own trees. */
export function fileList(root: string): Set<string> {
  const skip = /^(proc|sys|dev|run|tmp|var\/tmp|var\/lib\/dpkg|var\/lib\/apt|var\/cache|var\/log|var\/lib\/systemd\/deb-systemd-helper-enabled)(\/|$)/;
  const out = new Set<string>();
  const walk = (rel: string): void => {
    for (const entry of readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (skip.test(child)) continue;
      out.add(child);
      if (entry.isDirectory()) walk(child);
    }
  };
  walk('');
  return out;
}
