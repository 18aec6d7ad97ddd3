// Finding promises and partitions on disk (effects; the decisions are in plan.ts).
import { existsSync, readdirSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { listBeneath, statBeneath } from '../safe-fs/index.js';
import { classifyPromises, type DirEntryInfo } from './plan.js';
import type { PartitionRef, PromiseSpec } from './types.js';

/**
 * The entries of `rel` in the partition, through safe-fs: a link at etc/ or
 * etc/promise is not entered, and root stats no link's target (that would
 * tell the partition about root-only files). A link entry is taken as a
 * promise (releases link their checks there); it runs as the partition user,
 * who finds out whether the target exists and is executable.
 */
function listDir(partitionPath: string, rel: string): DirEntryInfo[] {
  let entries;
  try {
    entries = listBeneath(partitionPath, rel) ?? [];
  } catch {
    return [];
  }
  return entries.map(({ name, type }) => {
    const file = path.join(partitionPath, rel, name);
    if (type === 'symlink') return { name, path: file, isFile: true, executable: true };
    let executable = false;
    if (type === 'file') {
      try {
        // Executable by its owner or anyone: the partition user runs it (root's X_OK would say yes to any x bit).
        executable = ((statBeneath(partitionPath, path.join(rel, name))?.mode ?? 0) & 0o111) !== 0;
      } catch {
        // replaced meanwhile
      }
    }
    return { name, path: file, isFile: type === 'file', executable };
  });
}

export interface PartitionPromises {
  promises: PromiseSpec[];
  /** Entries of etc/promise that are not executable regular files. */
  bad: string[];
}

/** The promises of a partition: etc/plugin first, then etc/promise (slapgrid.md §6.1). */
export function listPromises(partitionPath: string): PartitionPromises {
  return classifyPromises(listDir(partitionPath, 'etc/plugin'), listDir(partitionPath, 'etc/promise'));
}

/** A partition's identity for the runner: its directory's owner runs its promises. */
export function partitionRef(instanceRoot: string, id: string): PartitionRef {
  const dir = path.join(instanceRoot, id);
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`partition ${id}: ${dir} is not a directory`);
  return { id, path: dir, uid: st.uid, gid: st.gid };
}

/** `<instance_root>/<partition_base_name>*` directories (links are not partitions), sorted. */
export function listPartitionIds(instanceRoot: string, baseName: string): string[] {
  let names: string[];
  try {
    names = readdirSync(instanceRoot);
  } catch (error) {
    throw new Error(`cannot list the partitions in ${instanceRoot}: ${(error as Error).message}`);
  }
  return names
    .filter((name) => name.startsWith(baseName))
    .filter((name) => {
      try {
        return lstatSync(path.join(instanceRoot, name)).isDirectory();
      } catch {
        return false;
      }
    })
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

/**
 * Whether the partition was last processed as started: the instance loop
 * keeps `<includeDir>/<id>.conf` (its supervisord group) exactly while the
 * partition is started, and deletes it when stopping or destroying it
 * (slapgrid.md §4.5–4.6; the offline mode §4.9 relies on the same file).
 */
export function isStartedLocally(includeDir: string, id: string): boolean {
  return existsSync(path.join(includeDir, `${id}.conf`));
}

