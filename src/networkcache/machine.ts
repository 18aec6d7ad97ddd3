// This machine's identity for cache compatibility (networkcache.md §4.2):
// multiarch as `gcc -dumpmachine` prints it, and the distribution triple as
// python's distro module reads /etc/os-release (id, version, codename).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { MachineInfo } from './select.js';

/** Debian's multiarch tuple of this Node's architecture, when gcc is not installed. */
const MULTIARCH: Record<string, string> = {
  x64: 'x86_64-linux-gnu', arm64: 'aarch64-linux-gnu', arm: 'arm-linux-gnueabihf', ia32: 'i686-linux-gnu',
  ppc64: 'powerpc64le-linux-gnu', s390x: 's390x-linux-gnu', riscv64: 'riscv64-linux-gnu',
};

/** /etc/os-release parsed (pure). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (!match) continue;
    out[match[1] as string] = (match[2] as string).replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

export function osTriple(osRelease: Record<string, string>): [string, string, string] {
  return [osRelease.ID ?? '', osRelease.VERSION_ID ?? '', osRelease.VERSION_CODENAME ?? ''];
}

let cached: MachineInfo | undefined;

export function machineInfo(): MachineInfo {
  if (cached) return cached;
  let multiarch: string;
  try {
    multiarch = execFileSync('gcc', ['-dumpmachine'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // The reference then gives up on the cache; the tuple Debian's gcc would print is as good.
    multiarch = MULTIARCH[process.arch] ?? `${process.arch}-linux-gnu`;
  }
  let osRelease: Record<string, string> = {};
  for (const file of ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      osRelease = parseOsRelease(readFileSync(file, 'utf8'));
      break;
    } catch {
      // next
    }
  }
  cached = { multiarch, os: osTriple(osRelease) };
  return cached;
}
