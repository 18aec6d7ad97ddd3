// Finding promises and partitions on disk (effects; the decisions are in plan.ts).
import { existsSync, readdirSync, statSync, lstatSync } from 'node:fs';
import path from 'node:path';
import { classifyPromises, type DirEntryInfo } from './plan.js';
import type { PartitionRef, PromiseSpec } from './types.js';

function listDir(dir: string): DirEntryInfo[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.map((name) => {
    const file = path.join(dir, name);
    let isFile = false;
    let executable = false;
    try {
      const st = statSync(file);
      isFile = st.isFile();
      // Executable by its owner or anyone: the partition user runs it (root's X_OK would say yes to any x bit).
      executable = isFile && (st.mode & 0o111) !== 0;
    } catch {
      // dangling link: not a file
    }
    return { name, path: file, isFile, executable };
  });
}

export interface PartitionPromises {
  promises: PromiseSpec[];
  /** Entries of etc/promise that are not executable regular files. */
  bad: string[];
}

/** The promises of a partition: etc/plugin first, then etc/promise (slapgrid.md §6.1). */
export function listPromises(partitionPath: string): PartitionPromises {
  return classifyPromises(listDir(path.join(partitionPath, 'etc', 'plugin')), listDir(path.join(partitionPath, 'etc', 'promise')));
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

