// Step 1 of format: read the current state of everything format manages,
// without changing anything. The result is plain data for plan.ts.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { readTextBeneath } from '../safe-fs/index.js';
import os from 'node:os';
import path from 'node:path';
import type { TapInfo } from '../native/index.js';
import { native } from '../native/index.js';
import { detectLayout, groupDirectories, type CgroupLayout } from '../cgroup/layout.js';
import { CgroupTree } from '../cgroup/group.js';
import { planLimitWrites } from '../cgroup/limits.js';
import { partitionLimits } from './cgroup-limits.js';
import { readLoginDefs, readUserDb, readUserDbAsRecovered, recoverUserDb, UserDbLockedError, type UserDbLocation } from '../users/apply.js';
import { UserDbChangedError } from './plan-network.js';
import type { IdRange, UserDb } from '../users/db.js';
import type { AddressState, LinkState, Rtnl, RouteState } from '../network/netlink.js';
import { storedFromJson, type Dict, type Marshalled } from './computer-xml.js';
import type { FormatSettings } from './settings.js';
import { readReportRecord, sha256, stateFilesRecorded, type ReportRecord } from './report-record.js';

export const NONLOCAL_BIND = '/proc/sys/net/ipv6/ip_nonlocal_bind';

export interface PathState {
  isDir: boolean;
  mode: number;
  uid: number;
  gid: number;
}

export interface Observed {
  users: UserDb;
  /** What recovery of the user database repaired (or, in a dry run, would repair) before it was read. */
  userDbRepairs: string[];
  idRanges: { system: IdRange; normal: IdRange };
  links: LinkState[];
  addresses: AddressState[];
  routes: RouteState[];
  taps: Map<string, TapInfo | null>;
  paths: Map<string, PathState | null>;
  /** Existing file contents we may rewrite (.slapos-resource, state files). */
  files: Map<string, string | null>;
  /** Entries of partition directories that may be removed (shrink). */
  dirEntries: Map<string, string[]>;
  /** Per-partition records from the master's ip_list, asked only for partitions with no local record (run.ts). */
  masterRecords?: Map<string, Dict>;
  /** Stored computer dict (computer_xml), if any. */
  stored?: Dict;
  /** `-i`: `stored` comes from a definition file: the operator's word, the only record (not the kernel's, .slapos-resource, the master's). */
  storedFromDefinition?: boolean;
  /** The stored dict's marshalled forms, when known without extra work (reused if nothing changes). */
  storedMarshalled?: Marshalled;
  /** The last report the master accepted (report-record.ts), if recorded. */
  reportRecord?: ReportRecord;
  /** computer_json's text when format wrote it from `stored` (the recorded pair): the same computer's JSON is this text. */
  storedJson?: string;
  /** sha256 of the state files' texts as read, when there is a record to compare them with. */
  stateDigests?: { xml: string; json: string | null };
  /** Indexes found by name beyond partition_amount (users, dirs, taps, stored partitions). */
  surplus: number[];
  cgroup?: { layout: CgroupLayout; existing: Map<string, boolean>; values: Map<string, string | null> };
  cgroupError?: string;
  nonlocalBind?: string;
  osType: string;
}

export function pathState(file: string): PathState | null {
  try {
    const st = statSync(file);
    return { isDir: st.isDirectory(), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  } catch {
    return null;
  }
}

/**
 * A file in a partition directory (the partition user's): through safe-fs,
 * so that a link or a FIFO planted there is neither followed nor waited on.
 * Refused or absent: null, so that format rewrites it.
 */
function readPartitionFile(dir: string, name: string): string | null {
  try {
    return readTextBeneath(dir, name) ?? null;
  } catch {
    return null; // differs from the planned content: replaced by the write (the name, not its target)
  }
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** The reference's os_type: JSON of [platform, distro id, version, name]. */
function osType(): string {
  const release = readText('/etc/os-release') ?? '';
  const field = (key: string) => new RegExp(`^${key}="?([^"\\n]*)"?$`, 'm').exec(release)?.[1] ?? '';
  const platform = `${os.type()}-${os.release()}-${os.machine()}`;
  return JSON.stringify([platform, field('ID'), field('VERSION_ID'), field('NAME')]).replaceAll('","', '", "');
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function partitionIndexes(names: Iterable<string>, base: string): number[] {
  const re = new RegExp(`^${base.replace(/[-]/g, '\\-')}(0|[1-9][0-9]*)$`);
  const out: number[] = [];
  for (const name of names) {
    const m = re.exec(name);
    if (m?.[1]) out.push(Number(m[1]));
  }
  return out;
}

export async function observe(settings: FormatSettings, rtnl: Rtnl | undefined, userDb: UserDbLocation): Promise<Observed> {
  // A commit a killed run left is completed (or rolled back) before anything reads the database.
  let userDbRepairs: string[];
  try {
    userDbRepairs = recoverUserDb(userDb, settings.dryRun);
  } catch (error) {
    if (error instanceof UserDbLockedError) throw new UserDbChangedError(`the user database is busy (${error.message})`);
    throw error;
  }
  const users = settings.dryRun ? readUserDbAsRecovered(userDb) : readUserDb(userDb);
  const xmlText = readText(settings.computerXml);
  const jsonText = settings.computerJson ? readText(settings.computerJson) : null;
  let stored: Dict | undefined;
  let storedMarshalled: Marshalled | undefined;
  const reportRecord = readReportRecord(settings.computerXml);
  let stateDigests: Observed['stateDigests'];
  let storedJson: string | undefined;
  if (xmlText !== null) {
    try {
      // Files the last accepted report was made from are a pair format wrote: no need to marshal to compare them.
      if (reportRecord !== undefined) stateDigests = { xml: sha256(xmlText), json: jsonText !== null ? sha256(jsonText) : null };
      const recorded = stateDigests !== undefined && stateFilesRecorded(reportRecord, stateDigests.xml, stateDigests.json);
      const fromJson = storedFromJson(xmlText, jsonText, recorded);
      if (fromJson) ({ value: stored, marshalled: storedMarshalled } = fromJson);
      if (fromJson && recorded && jsonText !== null) storedJson = jsonText;
      else stored = (await import('./state-file.js')).loadsState(xmlText);
    } catch (error) {
      throw new Error(`cannot read the state file ${settings.computerXml}: ${(error as Error).message}; fix or move it away`);
    }
  }
  const links = rtnl ? await rtnl.links() : [];
  const [addresses, routes] = rtnl ? await Promise.all([rtnl.addresses(), rtnl.routes()]) : [[], []];

  // Surplus partitions: anything named like ours with an index >= amount.
  const storedList = Array.isArray(stored?.partition_list) ? (stored.partition_list as Dict[]) : [];
  const instanceEntries = listDir(settings.instanceRoot);
  const found = new Set<number>([
    ...partitionIndexes(users.passwd.lines.map((l) => l[0] ?? ''), settings.userBaseName),
    ...partitionIndexes(instanceEntries, settings.partitionBaseName),
    ...partitionIndexes(links.map((l) => l.name), settings.tapBaseName),
    ...partitionIndexes(storedList.map((p) => String(p.reference ?? '')), settings.partitionBaseName),
  ]);
  const surplus = [...found].filter((i) => i >= settings.partitionAmount).sort((a, b) => a - b);

  const taps = new Map<string, TapInfo | null>();
  const paths = new Map<string, PathState | null>();
  const files = new Map<string, string | null>();
  const dirEntries = new Map<string, string[]>();
  const all = [...Array.from({ length: settings.partitionAmount }, (_, i) => i), ...surplus];
  for (const root of [settings.instanceRoot, settings.softwareRoot, settings.certificateRepositoryPath]) {
    if (root) paths.set(root, pathState(root));
  }
  const addon = settings.alterNetwork ? native() : undefined;
  const linkByName = new Map(links.map((l) => [l.name, l]));
  for (const i of all) {
    const dir = path.join(settings.instanceRoot, `${settings.partitionBaseName}${i}`);
    paths.set(dir, pathState(dir));
    files.set(path.join(dir, '.slapos-resource'), readPartitionFile(dir, '.slapos-resource'));
    if (addon) {
      // A device missing from the link dump has no tap info to read (most
      // tuns); a tun/tap's owner, group, type and persistence come with the
      // dump (IFLA_TUN_*), sysfs is read only for a device without them.
      for (const name of [`${settings.tapBaseName}${i}`, `${settings.tunBaseName}${i}`]) {
        const link = linkByName.get(name);
        taps.set(name, link ? (link.tun ?? addon.tapInfo(name)) : null);
      }
    }
  }
  for (const i of surplus) {
    const dir = path.join(settings.instanceRoot, `${settings.partitionBaseName}${i}`);
    try {
      dirEntries.set(dir, readdirSync(dir));
    } catch {
      dirEntries.set(dir, []);
    }
  }
  files.set(settings.computerXml, xmlText);
  if (settings.computerJson) files.set(settings.computerJson, jsonText);

  let cgroup: Observed['cgroup'];
  let cgroupError: string | undefined;
  try {
    const layout = detectLayout();
    new CgroupTree(layout, settings.cgroupParent); // checks the parent's name
    // One listing of the parent per hierarchy, not a read per partition and hierarchy.
    const children = groupDirectories(layout, settings.cgroupParent).map((dir) => new Set(listDir(dir)));
    const existing = new Map<string, boolean>();
    const valueFiles: string[] = [];
    for (const i of all) {
      const name = `${settings.partitionBaseName}${i}`;
      const exists = children.every((set) => set.has(name));
      existing.set(name, exists);
      if (i < settings.partitionAmount) {
        const limits = partitionLimits(settings.limits, layout, exists);
        for (const write of planLimitWrites(layout, path.join(settings.cgroupParent, name), limits)) valueFiles.push(write.file);
      }
    }
    const contents = valueFiles.length > 0 ? native().cgroupReadValues(valueFiles) : [];
    cgroup = { layout, existing, values: new Map(valueFiles.map((file, k) => [file, contents[k] ?? null])) };
  } catch (error) {
    cgroupError = (error as Error).message;
  }

  return {
    users,
    userDbRepairs,
    idRanges: readLoginDefs(userDb.etcDir),
    links,
    addresses,
    routes,
    taps,
    paths,
    files,
    dirEntries,
    ...(stored ? { stored } : {}),
    ...(storedMarshalled ? { storedMarshalled } : {}),
    ...(reportRecord ? { reportRecord } : {}),
    ...(stateDigests ? { stateDigests } : {}),
    ...(storedJson !== undefined ? { storedJson } : {}),
    surplus,
    ...(cgroup ? { cgroup } : {}),
    ...(cgroupError ? { cgroupError } : {}),
    ...(rtnl ? { nonlocalBind: (readText(NONLOCAL_BIND) ?? '').trim() } : {}),
    osType: osType(),
  } as Observed;
}
