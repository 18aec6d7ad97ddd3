// Atomic file writes for format's state files: write a temporary file, fsync,
// rename, fsync the directory, so that readers (and a crash) see the old or the
// new content, never a torn file.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeBeneath, writeManyBeneath } from '../safe-fs/index.js';

export interface FileWrite {
  path: string;
  content: string;
  mode: number;
}

// The trusted base of a write is the file's directory: a partition directory
// (its entry is in instance_root, root's) or a root-owned state directory;
// the file name itself is never followed (safe-fs: O_EXCL|O_NOFOLLOW temp,
// fchmod and fsync by descriptor, rename, fsync of the directory).

/** One file: temp, fsync, rename, fsync the directory. */
export function writeFileAtomic(file: string, content: string, mode: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeBeneath(path.dirname(file), path.basename(file), content, { mode });
}

/**
 * Many files with the same guarantee per file, but the fsyncs run concurrently
 * (the journal commits them in a few batches instead of one commit each): all
 * temporary files are written and synced, then renamed in order, then each
 * directory is synced once.
 */
export async function writeFilesAtomic(files: readonly FileWrite[]): Promise<void> {
  for (const dir of new Set(files.map((f) => path.dirname(f.path)))) mkdirSync(dir, { recursive: true });
  await writeManyBeneath(files.map((f) => ({ base: path.dirname(f.path), rel: path.basename(f.path), content: f.content, mode: f.mode })));
}
