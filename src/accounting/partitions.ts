// The node's partitions, from root-owned state only (docs/design.md,
// "Hostile trees"): format's own state file (computer_json / computer_xml:
// reference, user name, tap of each partition), or, without one, the
// configured naming (<partition_base_name>N under instance_root is run by
// <user_base_name>N, tap <tap_base_name>N). The user's uid/gid come from the
// user database. Nothing a partition can write (its .slapos-resource) is read
// back: a partition naming another's user would run code as that user.
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { storedFromJson, type Dict } from '../format/computer-xml.js';
import { parsePasswd } from '../users/user.js';

export interface LocalPartition {
  id: string;
  path: string;
  user: string;
  /** null: the user is unknown, or the directory is not owned by it (nothing runs as anyone then). */
  uid: number | null;
  gid: number | null;
  /** Tap device name, when format made one. */
  tap: string | null;
}

export interface PartitionNaming {
  partitionBaseName: string;
  userBaseName: string;
  tapBaseName: string;
}

export interface PartitionSource {
  instanceRoot: string;
  naming: PartitionNaming;
  /** Format's state: computer_xml, and computer_json when configured. */
  formatState?: { xml: string; json?: string | undefined } | undefined;
}

const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Partitions from format's computer dict (pure). References that are not plain names are dropped. */
export function partitionsFromState(state: Dict, instanceRoot: string): Array<Omit<LocalPartition, 'uid' | 'gid'>> {
  const list = Array.isArray(state.partition_list) ? (state.partition_list as unknown[]) : [];
  const record = (v: unknown): Record<string, unknown> => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {});
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : null);
  const out: Array<Omit<LocalPartition, 'uid' | 'gid'>> = [];
  for (const item of list) {
    const d = record(item);
    const id = str(d.reference);
    const user = str(record(d.user).name);
    if (id === null || user === null || !PLAIN_NAME.test(id)) continue;
    out.push({ id, path: path.join(instanceRoot, id), user, tap: str(record(d.tap).name) });
  }
  return out;
}

/** Partitions by the configured naming, from instance_root's entries (pure). */
export function partitionsFromNaming(entries: readonly string[], instanceRoot: string, naming: PartitionNaming): Array<Omit<LocalPartition, 'uid' | 'gid'>> {
  const out: Array<Omit<LocalPartition, 'uid' | 'gid'>> = [];
  for (const name of entries) {
    if (!name.startsWith(naming.partitionBaseName)) continue;
    const index = name.slice(naming.partitionBaseName.length);
    if (!/^(0|[1-9]\d*)$/.test(index)) continue;
    out.push({ id: name, path: path.join(instanceRoot, name), user: `${naming.userBaseName}${index}`, tap: `${naming.tapBaseName}${index}` });
  }
  return out;
}

/** Format's computer dict, or undefined when there is no state file. Throws on an unreadable one. */
export async function readFormatState(state: { xml: string; json?: string | undefined }): Promise<Dict | undefined> {
  const read = (file: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  };
  const xml = read(state.xml);
  const json = state.json ? read(state.json) : null;
  if (xml === null) {
    if (json === null) return undefined;
    return JSON.parse(json) as Dict; // only the JSON (format wrote both; the XML was moved away)
  }
  const fromJson = storedFromJson(xml, json);
  if (fromJson) return fromJson.value;
  return (await import('../format/state-file.js')).loadsState(xml);
}

/**
 * The partitions, sorted by id. A partition whose directory is not owned by
 * its user (or whose user is unknown) is listed with uid/gid null and a
 * warning: its counters are read, but nothing runs as anyone for it.
 */
export async function discoverPartitions(source: PartitionSource, warn: (message: string) => void = () => {}, passwdFile = '/etc/passwd'): Promise<LocalPartition[]> {
  let found: Array<Omit<LocalPartition, 'uid' | 'gid'>> | undefined;
  if (source.formatState) {
    try {
      const state = await readFormatState(source.formatState);
      if (state) found = partitionsFromState(state, source.instanceRoot);
    } catch (error) {
      warn(`cannot read format's state ${source.formatState.xml}: ${(error as Error).message}; using the configured naming`);
    }
  }
  if (!found) {
    let names: string[];
    try {
      names = readdirSync(source.instanceRoot);
    } catch (error) {
      throw new Error(`cannot list instance_root ${source.instanceRoot}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    found = partitionsFromNaming(names, source.instanceRoot, source.naming);
  }
  let users = new Map<string, { uid: number; gid: number }>();
  try {
    users = new Map(parsePasswd(readFileSync(passwdFile, 'utf8')).map((e) => [e.name, { uid: e.uid, gid: e.gid }]));
  } catch (error) {
    warn(`cannot read ${passwdFile}: ${(error as Error).message}`);
  }
  const out: LocalPartition[] = [];
  for (const p of found) {
    // The partition's own entry is in instance_root (root's): its type and owner are root's word.
    let owner: number;
    try {
      const st = lstatSync(p.path);
      if (!st.isDirectory()) {
        warn(`${p.id}: ${p.path} is not a directory; skipped`);
        continue;
      }
      owner = st.uid;
    } catch {
      continue; // listed but not (or no longer) on disk
    }
    const user = users.get(p.user);
    if (user && owner !== user.uid) {
      warn(`${p.id}: ${p.path} is owned by uid ${owner}, not by its user ${p.user} (uid ${user.uid}); nothing runs as anyone for it`);
      out.push({ ...p, uid: null, gid: null });
      continue;
    }
    if (user && (user.uid === 0 || user.gid === 0)) {
      warn(`${p.id}: user ${p.user} is root; nothing runs for it`);
      out.push({ ...p, uid: null, gid: null });
      continue;
    }
    out.push({ ...p, uid: user?.uid ?? null, gid: user?.gid ?? null });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));
}
