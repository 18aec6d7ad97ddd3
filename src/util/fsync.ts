// Durability of root-owned files and directories opened by path (the
// database, the user database): partition trees use src/safe-fs instead.
import { closeSync, fsyncSync, openSync } from 'node:fs';

/** fsync of a file or directory, by path (a directory after a rename in it). */
export function fsyncPath(file: string): void {
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
