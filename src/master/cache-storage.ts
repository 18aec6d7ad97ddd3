// The network cache's blob store (shacache): files named by the sha512 of
// their content, under <directory>/blobs/<first two hex>/<sha512>. An upload
// streams to a fresh temporary file (never held in memory), is hashed and
// counted on the way, fsynced, then renamed into place and the directory
// fsynced: a crash leaves either the whole blob or a stray temporary file
// (removed at the next start), never a partial blob under a sha512 name.
// Several master processes (PostgreSQL deployments) may share the directory:
// names are content hashes, temporary names are random, rename is atomic.
import { randomBytes, createHash } from 'node:crypto';
import { closeSync, constants, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, statSync, statfsSync, unlinkSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { MasterError } from './validate.js';

export const SHA512_HEX = /^[0-9a-f]{128}$/;

export interface StoredBlob {
  sha512: string;
  size: number;
  mtimeMs: number;
}

/**
 * Which blobs pruning removes (pure): those no shadir entry names, stored
 * more than `minAgeMs` ago — an upload stores its blob, then its entry, so a
 * young blob may be an upload in progress.
 */
export function prunableBlobs(blobs: readonly StoredBlob[], referenced: ReadonlySet<string>, now: number, minAgeMs: number): StoredBlob[] {
  return blobs.filter((b) => !referenced.has(b.sha512) && now - b.mtimeMs >= minAgeMs);
}

export interface BlobStoreOptions {
  directory: string;
  /** Total bytes of blobs; an upload that would exceed it is 507. */
  quota: number;
  /** Largest single blob; a larger upload is 413. */
  maxBlob: number;
}

/** How long a measured total is trusted before the directory is walked again (other masters write too). */
const USAGE_TTL_MS = 30_000;
/** Temporary files older than this are leftovers of a killed upload. */
const STALE_TMP_MS = 24 * 3600_000;

function fsyncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class BlobStore {
  private usage: { bytes: number; at: number } | undefined;
  /** Bytes of uploads in progress in this process (reserved against the quota). */
  private inFlight = 0;

  constructor(readonly options: BlobStoreOptions) {
    mkdirSync(path.join(options.directory, 'blobs'), { recursive: true, mode: 0o700 });
    mkdirSync(path.join(options.directory, 'tmp'), { recursive: true, mode: 0o700 });
    this.removeStaleTemporaries();
  }

  blobPath(sha512: string): string {
    return path.join(this.options.directory, 'blobs', sha512.slice(0, 2), sha512);
  }

  /** The blob's size, or undefined when absent. */
  stat(sha512: string): Stats | undefined {
    if (!SHA512_HEX.test(sha512)) return undefined;
    try {
      const stats = statSync(this.blobPath(sha512));
      return stats.isFile() ? stats : undefined;
    } catch {
      return undefined;
    }
  }

  /** Every stored blob with its size and modification time (pruning). */
  list(): StoredBlob[] {
    const out: StoredBlob[] = [];
    const blobs = path.join(this.options.directory, 'blobs');
    for (const prefix of readdirSync(blobs)) {
      if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
      for (const name of readdirSync(path.join(blobs, prefix))) {
        const stats = name.startsWith(prefix) ? this.stat(name) : undefined;
        if (stats) out.push({ sha512: name, size: stats.size, mtimeMs: stats.mtimeMs });
      }
    }
    return out;
  }

  /** Removes a blob (a download in progress keeps reading it: unlink, not truncate). */
  remove(sha512: string): void {
    if (!SHA512_HEX.test(sha512)) throw new Error(`not a blob name: ${sha512.slice(0, 140)}`);
    try {
      unlinkSync(this.blobPath(sha512));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    this.usage = undefined;
  }

  /** Bytes stored (walks the directory at most every USAGE_TTL_MS). */
  usedBytes(now = Date.now()): number {
    if (this.usage && now - this.usage.at < USAGE_TTL_MS) return this.usage.bytes;
    let bytes = 0;
    const blobs = path.join(this.options.directory, 'blobs');
    for (const fan of readdirSync(blobs)) {
      for (const name of readdirSync(path.join(blobs, fan))) {
        try {
          bytes += statSync(path.join(blobs, fan, name)).size;
        } catch {
          // removed meanwhile
        }
      }
    }
    this.usage = { bytes, at: now };
    return bytes;
  }

  private room(): number {
    const free = (() => {
      const s = statfsSync(this.options.directory);
      return s.bavail * s.bsize;
    })();
    return Math.min(this.options.quota - this.usedBytes() - this.inFlight, free);
  }

  /**
   * Streams `body` into the store. `expected`: the sha512 the client named
   * (PUT); a mismatch is 400 and nothing is kept. Returns the sha512 and
   * whether the blob was new.
   */
  async put(body: Readable, declaredLength: number | undefined, expected?: string): Promise<{ sha512: string; size: number; created: boolean }> {
    const { maxBlob } = this.options;
    if (declaredLength !== undefined && declaredLength > maxBlob) {
      body.resume();
      throw new MasterError(413, `blob of ${declaredLength} bytes is larger than this cache accepts (${maxBlob} bytes)`);
    }
    const room = this.room();
    if (declaredLength !== undefined && declaredLength > room) {
      body.resume();
      throw new MasterError(507, `cache full: ${declaredLength} bytes do not fit in the ${Math.max(room, 0)} bytes left of its quota`);
    }
    const reserved = Math.min(declaredLength ?? 0, room);
    this.inFlight += reserved;
    const tmp = path.join(this.options.directory, 'tmp', `${Date.now()}-${randomBytes(8).toString('hex')}`);
    const file = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    const hash = createHash('sha512');
    let size = 0;
    let kept = false;
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > maxBlob) throw new MasterError(413, `blob larger than this cache accepts (${maxBlob} bytes)`);
        if (size > room) {
          throw new MasterError(507, `cache full: the upload went past the ${Math.max(room, 0)} bytes left of its quota`);
        }
        hash.update(chunk);
        await file.write(chunk);
      }
      if (declaredLength !== undefined && size !== declaredLength) throw new MasterError(400, `body ended after ${size} of ${declaredLength} bytes`);
      await file.sync();
      await file.close();
      const sha512 = hash.digest('hex');
      if (expected !== undefined && expected !== sha512) throw new MasterError(400, `Checksum mismatch: the body's sha512 is ${sha512}`);
      const final = this.blobPath(sha512);
      if (this.stat(sha512)) return { sha512, size, created: false };
      mkdirSync(path.dirname(final), { recursive: true, mode: 0o700 });
      renameSync(tmp, final);
      kept = true;
      fsyncDir(path.dirname(final));
      if (this.usage) this.usage.bytes += size;
      return { sha512, size, created: true };
    } finally {
      this.inFlight -= reserved;
      await file.close().catch(() => undefined);
      if (!kept) {
        try {
          unlinkSync(tmp);
        } catch {
          // already gone
        }
      }
    }
  }

  private removeStaleTemporaries(now = Date.now()): void {
    const dir = path.join(this.options.directory, 'tmp');
    for (const name of readdirSync(dir)) {
      // Names start with their creation time; another master's upload in progress is recent.
      const started = Number(name.split('-')[0]);
      if (Number.isFinite(started) && now - started > STALE_TMP_MS) {
        try {
          unlinkSync(path.join(dir, name));
        } catch {
          // another master removed it
        }
      }
    }
  }
}
