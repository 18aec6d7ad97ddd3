// The node's partitions as format left them: every directory of
// instance_root holding a .slapos-resource (format's JSON of the partition:
// reference, user, tap). Their counters are read from sysfs and cgroupfs.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parsePasswd } from '../users/user.js';

export interface LocalPartition {
  id: string;
  path: string;
  user: string;
  uid: number | null;
  gid: number | null;
  /** Tap device name, when format made one. */
  tap: string | null;
}

/** One partition from its .slapos-resource text. Pure. */
export function partitionFromResource(dir: string, text: string): Omit<LocalPartition, 'uid' | 'gid'> {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path.join(dir, '.slapos-resource')}: not JSON (${(error as Error).message})`);
  }
  const record = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});
  const d = record(data);
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
  const id = str(d.reference) ?? path.basename(dir);
  return { id, path: dir, user: str(record(d.user).name) ?? id, tap: str(record(d.tap).name) };
}

/** The partitions under instance_root, sorted by id; unreadable entries are reported, not fatal. */
export function discoverPartitions(instanceRoot: string, warn: (message: string) => void = () => {}, passwdFile = '/etc/passwd'): LocalPartition[] {
  let names: string[];
  try {
    names = readdirSync(instanceRoot);
  } catch (error) {
    throw new Error(`cannot list instance_root ${instanceRoot}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let users = new Map<string, { uid: number; gid: number }>();
  try {
    users = new Map(parsePasswd(readFileSync(passwdFile, 'utf8')).map((e) => [e.name, { uid: e.uid, gid: e.gid }]));
  } catch (error) {
    warn(`cannot read ${passwdFile}: ${(error as Error).message}`);
  }
  const out: LocalPartition[] = [];
  for (const name of names) {
    const dir = path.join(instanceRoot, name);
    let text: string;
    try {
      text = readFileSync(path.join(dir, '.slapos-resource'), 'utf8');
    } catch {
      continue; // not a partition (etc, var, sockets) or not formatted
    }
    try {
      const p = partitionFromResource(dir, text);
      const user = users.get(p.user);
      out.push({ ...p, uid: user?.uid ?? null, gid: user?.gid ?? null });
    } catch (error) {
      warn((error as Error).message);
    }
  }
  return out.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
}
