// The extraction of a cached release, run AS THE SOFTWARE USER through the
// executor (never as root): `node extract-worker.js <tarball> <software_root>
// <hash> <max bytes> <max members>`. It unpacks into a fresh staging
// directory `<software_root>/.<hash>.extract-XXXXXX`, checking every member
// with MemberPolicy before writing it (files created O_EXCL | O_NOFOLLOW,
// nothing written through a link), then renames `<staging>/<hash>` to
// `<software_root>/<hash>` in one step: a kill at any point leaves only a
// staging directory (removed by the next attempt), never a half release; a
// kill after the rename leaves a whole release holding EXTRACTED_MARKER,
// which the next run completes without downloading again (cache-step.ts).
// Kill points: kill-points.ts.
// Prints one JSON line {members, bytes} on success; exit 1 with the reason on stderr.
import { closeSync, constants, fchmodSync, futimesSync, linkSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, renameSync, rmSync, rmdirSync, chmodSync, symlinkSync, writeSync, fsyncSync } from 'node:fs';
import path from 'node:path';
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import { killPoint } from '../util/kill-point.js';
import { EXTRACT_KILL_POINTS } from './kill-points.js';
import { EXTRACTED_MARKER, MemberPolicy } from './member-policy.js';

const [STAGING, MEMBER, UNPACKED, RENAMED] = EXTRACT_KILL_POINTS;

function isGzip(file: string): boolean {
  const fd = openSync(file, constants.O_RDONLY);
  try {
    const magic = Buffer.alloc(2);
    return readSync(fd, magic, 0, 2, 0) === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
  } finally {
    closeSync(fd);
  }
}

/** Leftovers of an earlier, killed extraction of the same release. */
function removeStaging(softwareRoot: string, hash: string): void {
  for (const name of readdirSync(softwareRoot)) {
    if (name.startsWith(`.${hash}.extract-`)) rmSync(path.join(softwareRoot, name), { recursive: true, force: true });
  }
}

async function writeFile(stream: Readable, file: string, mode: number, mtime: Date | undefined): Promise<number> {
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode & 0o777);
  let written = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let offset = 0;
      while (offset < chunk.length) offset += writeSync(fd, chunk, offset);
      written += chunk.length;
    }
    // Exactly the archive's permission bits (the umask would drop group write), never setuid/setgid.
    fchmodSync(fd, mode & 0o777);
    if (mtime) futimesSync(fd, mtime, mtime);
  } finally {
    closeSync(fd);
  }
  return written;
}

export async function extractRelease(tarball: string, softwareRoot: string, hash: string, maxBytes: number, maxMembers: number): Promise<{ members: number; bytes: number }> {
  removeStaging(softwareRoot, hash);
  const staging = mkdtempSync(path.join(softwareRoot, `.${hash}.extract-`));
  killPoint(STAGING);
  const marker = `${hash}/${EXTRACTED_MARKER}`;
  let files = 0;
  const policy = new MemberPolicy(hash, path.join(softwareRoot, hash), { maxBytes, maxMembers });
  const dirModes: [string, number][] = [];
  try {
    const extract = tar.extract();
    const source = createReadStream(tarball);
    const input: Readable = isGzip(tarball) ? source.pipe(createGunzip()) : source;
    input.on('error', (error) => extract.destroy(error));
    input.pipe(extract);
    for await (const entry of extract) {
      const header = entry.header;
      const decision = policy.check(header);
      if (decision.rel === marker) {
        entry.resume(); // ours to write, never the archive's
        continue;
      }
      const full = path.join(staging, decision.rel);
      mkdirSync(path.dirname(full), { recursive: true, mode: 0o755 });
      switch (decision.kind) {
        case 'directory':
          try {
            mkdirSync(full, { mode: 0o700 });
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
          }
          dirModes.push([full, (header.mode ?? 0o755) & 0o777]);
          entry.resume();
          break;
        case 'file':
          await writeFile(entry as unknown as Readable, full, header.mode ?? 0o644, header.mtime);
          if (++files === 1) killPoint(MEMBER);
          break;
        case 'symlink':
          symlinkSync(decision.target, full);
          entry.resume();
          break;
        case 'hardlink':
          linkSync(path.join(staging, decision.target), full);
          entry.resume();
          break;
      }
    }
    mkdirSync(path.join(staging, hash), { recursive: true, mode: 0o755 });
    closeSync(openSync(path.join(staging, marker), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644));
    // Deepest first, so that a read-only directory is set after its content was written.
    for (const [dir, mode] of dirModes.reverse()) chmodSync(dir, mode);
    killPoint(UNPACKED);
    const dirFd = openSync(softwareRoot, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      renameSync(path.join(staging, hash), path.join(softwareRoot, hash));
      killPoint(RENAMED);
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
    rmdirSync(staging);
    return policy.totals;
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
}

// Run as a program (not when imported by tests of the policy).
if (process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href) {
  const [tarball, softwareRoot, hash, maxBytes, maxMembers] = process.argv.slice(2);
  if (!tarball || !softwareRoot || !hash || !/^[0-9a-f]{32}$/.test(hash) || !maxBytes || !maxMembers) {
    process.stderr.write('usage: extract-worker.js <tarball> <software_root> <hash> <max bytes> <max members>\n');
    process.exit(2);
  }
  extractRelease(tarball, softwareRoot, hash, Number(maxBytes), Number(maxMembers)).then(
    (totals) => process.stdout.write(`${JSON.stringify(totals)}\n`),
    (error: Error) => {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    },
  );
}
