// Atomic file writes for format's state files: write a temporary file, fsync,
// rename, fsync the directory, so that readers (and a crash) see the old or the
// new content, never a torn file.
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';

export interface FileWrite {
  path: string;
  content: string;
  mode: number;
}

const tempOf = (file: string) => path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** One file: temp, fsync, rename, fsync the directory. */
export function writeFileAtomic(file: string, content: string, mode: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temp = tempOf(file);
  const fd = openSync(temp, 'w', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(temp, mode);
  renameSync(temp, file);
  fsyncDirSync(path.dirname(file));
}

/** Runs `fn` on every item, at most `limit` at a time. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** fsyncs in flight at once: enough for the file system to commit them together. */
const CONCURRENCY = 16;

/**
 * Many files with the same guarantee per file, but the fsyncs run concurrently
 * (the journal commits them in a few batches instead of one commit each): all
 * temporary files are written and synced, then renamed in order, then each
 * directory is synced once.
 */
export async function writeFilesAtomic(files: readonly FileWrite[]): Promise<void> {
  for (const dir of new Set(files.map((f) => path.dirname(f.path)))) mkdirSync(dir, { recursive: true });
  await forEachLimited(files, CONCURRENCY, async (f) => {
    const handle = await open(tempOf(f.path), 'w', f.mode);
    try {
      await handle.writeFile(f.content);
      await handle.chmod(f.mode); // open's mode is filtered by the umask
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
  for (const f of files) renameSync(tempOf(f.path), f.path);
  await forEachLimited([...new Set(files.map((f) => path.dirname(f.path)))], CONCURRENCY, async (dir) => {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
}
