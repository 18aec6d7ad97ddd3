// Disk usage of partition directories, without walking millions of files
// every minute:
//  1. per-user quota counters (`repquota -u -n` of the filesystem, one process
//     per filesystem per run) when [collect] disk_snapshot_use_quota is on and
//     the filesystem has user quotas: the partition user's blocks on that
//     filesystem, which is the partition directory on a SlapOS node;
//  2. otherwise a walk of the directory (safe-fs: no link entered; lstat, allocated blocks, hard links
//     counted once, one filesystem), refreshed at most every
//     disk_snapshot_time_cycle seconds per partition, stalest first, within a
//     per-run time budget and a per-walk entry budget. A walk cut short is
//     stored as a lower bound (partial); between walks the last value is used.
import { closeSync, constants, lstatSync } from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { native } from '../native/index.js';
import { openBeneath } from '../safe-fs/index.js';
import type { DiskEntry } from './store.js';

export interface WalkResult {
  bytes: number;
  entries: number;
  partial: boolean;
}

/**
 * Allocated bytes under `root`, stopping at `maxEntries` or `deadline` (ms
 * since epoch). The partition is the user's tree: every directory is opened
 * beneath `root` without following a link in any component (safe-fs), and
 * entries are lstat'ed through that open directory (/proc/self/fd/N/<name>),
 * so a directory swapped for a link mid-walk is never entered.
 */
export function walkDiskUsage(root: string, maxEntries: number, deadline: number): WalkResult {
  const top = lstatSync(root);
  const seen = new Set<string>();
  let bytes = top.blocks * 512;
  let entries = 1;
  const k = native().safeFsConstants;
  const stack = [''];
  while (stack.length > 0) {
    const rel = stack.pop() as string;
    let fd: number;
    let names;
    try {
      fd = openBeneath(root, rel, constants.O_RDONLY | k.O_DIRECTORY | k.O_NONBLOCK);
    } catch {
      continue; // vanished, unreadable or a link: what can be read is counted
    }
    try {
      names = native().listAt(fd);
      for (const entry of names) {
        if (entries >= maxEntries || (entries % 1024 === 0 && Date.now() > deadline)) return { bytes, entries, partial: true };
        let st;
        try {
          st = lstatSync(`/proc/self/fd/${fd}/${entry.name}`);
        } catch {
          continue;
        }
        entries += 1;
        if (st.dev !== top.dev) continue; // another filesystem mounted inside
        if (st.nlink > 1 && !st.isDirectory()) {
          const key = `${st.ino}`;
          if (seen.has(key)) continue;
          seen.add(key);
        }
        bytes += st.blocks * 512;
        if (st.isDirectory()) stack.push(rel === '' ? entry.name : path.join(rel, entry.name));
      }
    } catch {
      // unreadable meanwhile: what was read is counted
    } finally {
      closeSync(fd);
    }
  }
  return { bytes, entries, partial: false };
}

/** Which partitions to walk this run: stale or never measured, stalest first. Pure. */
export function walkOrder(ids: readonly string[], cache: ReadonlyMap<string, DiskEntry>, now: number, cycle: number): string[] {
  return ids
    .filter((id) => { const c = cache.get(id); return c === undefined || c.method !== 'walk' || now - c.at >= cycle; })
    .sort((a, b) => (cache.get(a)?.at ?? -1) - (cache.get(b)?.at ?? -1) || a.localeCompare(b));
}

/** `repquota -u -n` output → KiB used per uid. Pure. */
export function parseRepquota(text: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const line of text.split('\n')) {
    const match = /^#(\d+)\s+[-+]{2}\s+(\d+)/.exec(line.trim());
    if (match) out.set(Number(match[1]), Number(match[2]));
  }
  return out;
}

/** Bytes used per uid on the filesystem mounted at `mountPoint`, or null when it has no user quota (or no repquota). */
export async function quotaUsage(mountPoint: string): Promise<Map<number, number> | null> {
  // node:child_process rather than execa: collect runs every minute and execa's ~100 modules cost ~50 ms to load.
  const stdout = await new Promise<string | null>((resolve) => {
    const child = execFile('repquota', ['-u', '-n', mountPoint], { timeout: 10_000, env: { ...process.env, LANG: 'C' }, maxBuffer: 1 << 26 },
      (error, out) => resolve(error ? null : out));
    child.stdin?.end();
  });
  if (stdout === null) return null;
  const kib = parseRepquota(stdout);
  if (kib.size === 0) return null;
  return new Map([...kib].map(([uid, k]) => [uid, k * 1024]));
}

/** The mount point holding `dir`, from /proc/self/mountinfo text (longest prefix). Pure. */
export function mountPointOf(dir: string, mountinfo: string): string {
  let best = '/';
  for (const line of mountinfo.split('\n')) {
    const mount = line.split(' ')[4];
    if (!mount) continue;
    const point = mount.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if ((dir === point || dir.startsWith(point.endsWith('/') ? point : `${point}/`)) && point.length > best.length) best = point;
  }
  return best;
}
