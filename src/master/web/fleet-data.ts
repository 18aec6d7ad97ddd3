// What the web view and its JSON API show: the fleet (computers, partitions,
// software releases), the instance trees, usage series. Gathered in one read
// transaction, then cut to what the viewer may see (viewer.ts) and masked:
// parameter values are secrets unless the viewer may and does ask for them.
import { instanceXmlToDict } from '../../slap/instance-xml.js';
import { hardwareReport, type HardwareReport } from '../../slap/hardware-report.js';
import { isRecord } from '../../slap/pyvalue.js';
import { slaveList } from '../render.js';
import type { PartitionRow, PromiseRow, Tx } from '../store.js';
import { RANGES, sumSeries, type Range, type Series, type SeriesResource } from '../usage-series.js';
import type { Viewer } from './viewer.js';

export const MASK = '••••••';

/** Keys whose values are secret even for a user who did not ask (passwords, keys, tokens, URLs with credentials). */
const SECRET_KEY = /pass|secret|key|token|cert|private|credential|auth/i;
const URL_WITH_USERINFO = /^[a-z][a-z0-9+.-]*:\/\/[^/@\s]+@/i;

export function maskParameters(values: Record<string, unknown>, viewer: Viewer, reveal: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, raw] of Object.entries(values)) {
    const value = raw === null || raw === undefined ? '' : typeof raw === 'string' ? raw : JSON.stringify(raw);
    if (!viewer.secrets) out[key] = MASK;
    else if (!reveal && (SECRET_KEY.test(key) || URL_WITH_USERINFO.test(value))) out[key] = MASK;
    else out[key] = value;
  }
  return out;
}

export interface PromiseView {
  name: string;
  status: string;
  message: string;
  checked_at: number;
  failing_since: number | null;
}

export interface PartitionView {
  computer: string;
  partition: string;
  state: 'free' | 'busy';
  title: string | null;
  root: string | null;
  software_release: string | null;
  software_type: string | null;
  requested_state: string;
  reported_state: string | null;
  reported_at: number | null;
  error_log: string | null;
  /** "ok", "failing" (a promise fails or the partition reported an error), "unknown" (nothing reported yet), or "free". */
  health: 'ok' | 'failing' | 'unknown' | 'free';
  promises: PromiseView[];
}

export interface SoftwareView {
  url: string;
  requested_state: string;
  /** building / available / error / destroyed, or null before the first report. */
  reported_state: string | null;
  reported_at: number | null;
  error_log: string | null;
}

export interface ComputerView {
  computer: string;
  address: string | null;
  /** The latest time the computer reported anything (software, partition, usage); null: never. */
  last_contact: number | null;
  partitions_free: number;
  partitions_busy: number;
  partitions: PartitionView[];
  software: SoftwareView[];
  health: { ok: number; failing: number; unknown: number };
  /**
   * The node's last hardware status (CPU, memory, disks as its collect saw them) and when the master received it;
   * null before the first report, from a node that does not send it, or for a partition's viewer (it sees its partition only).
   */
  hardware: (HardwareReport & { reported_at: number }) | null;
}

/** A stored document, re-checked on the way out (a row written by hand or by an older version shows as none). */
function hardwareView(document: string, reportedAt: number): ComputerView['hardware'] {
  try {
    return { ...hardwareReport(JSON.parse(document)), reported_at: reportedAt };
  } catch {
    return null;
  }
}

function health(p: PartitionRow, promises: PromiseView[]): PartitionView['health'] {
  if (p.slap_state === 'free') return 'free';
  if (p.reported_state === 'error' || p.error_log || promises.some((x) => x.status !== 'ok')) return 'failing';
  if (p.reported_state === null && promises.length === 0) return 'unknown';
  return 'ok';
}

const promiseViews = (rows: PromiseRow[]) => rows.map((r) => ({
  name: r.name, status: r.status, message: r.message, checked_at: r.checked_at, failing_since: r.failing_since,
}));

const canSee = (viewer: Viewer, computer: string, partition?: string) =>
  viewer.computer === undefined || (viewer.computer === computer && (viewer.partition === undefined || partition === undefined || viewer.partition === partition));

export async function gatherFleet(tx: Tx, viewer: Viewer): Promise<ComputerView[]> {
  const usage = new Map((await tx.latestUsage()).map((u) => [u.computer_reference, u.received_at]));
  const hardware = new Map(viewer.partition === undefined ? (await tx.listHardware()).map((h) => [h.computer_reference, h]) : []);
  const out: ComputerView[] = [];
  for (const c of await tx.listComputers()) {
    if (!canSee(viewer, c.reference)) continue;
    const promises = new Map<string, PromiseView[]>();
    for (const r of await tx.listPromises(c.reference)) promises.set(r.partition_reference, [...(promises.get(r.partition_reference) ?? []), ...promiseViews([r])]);
    const rows = await tx.listPartitions(c.reference);
    const software = viewer.partition === undefined ? await tx.listSoftware(c.reference) : [];
    const hw = hardware.get(c.reference);
    const times = [usage.get(c.reference) ?? null, hw?.reported_at ?? null, ...rows.map((p) => p.reported_at), ...software.map((s) => s.reported_at),
      ...[...promises.values()].flat().map((p) => p.checked_at)].filter((x): x is number => typeof x === 'number');
    const partitions = rows.filter((p) => canSee(viewer, c.reference, p.reference)).map((p): PartitionView => {
      // A freed partition's old results belong to the instance that left.
      const list = p.slap_state === 'busy' ? promises.get(p.reference) ?? [] : [];
      return {
        computer: c.reference, partition: p.reference, state: p.slap_state, title: p.partition_reference,
        root: p.slap_state === 'busy' ? (p.requested_by || p.partition_reference) : null,
        software_release: p.software_release, software_type: p.software_type, requested_state: p.requested_state,
        reported_state: p.reported_state, reported_at: p.reported_at, error_log: p.error_log, health: health(p, list), promises: list,
      };
    });
    const count = (h: PartitionView['health']) => partitions.filter((p) => p.health === h).length;
    out.push({
      computer: c.reference, address: c.address, last_contact: times.length ? Math.max(...times) : null,
      partitions_free: rows.filter((p) => p.slap_state === 'free').length, partitions_busy: rows.filter((p) => p.slap_state === 'busy').length,
      partitions,
      software: software.map((s) => ({ url: s.url, requested_state: s.requested_state, reported_state: s.reported_state, reported_at: s.reported_at, error_log: s.error_log })),
      health: { ok: count('ok'), failing: count('failing'), unknown: count('unknown') },
      hardware: hw ? hardwareView(hw.document, hw.reported_at) : null,
    });
  }
  return out;
}

export interface SharedView {
  title: string;
  software_type: string | null;
  parameters: Record<string, string>;
}

export interface InstanceView extends PartitionView {
  parameters: Record<string, string>;
  connection_parameters: Record<string, string>;
  shared: SharedView[];
  children: InstanceView[];
}

/** Instance trees: each root with the instances it requested (by requested_by) and the shared instances each hosts. */
export async function gatherInstances(tx: Tx, viewer: Viewer, reveal: boolean): Promise<InstanceView[]> {
  const fleet = await gatherFleet(tx, viewer);
  const byKey = new Map(fleet.flatMap((c) => c.partitions).map((p) => [`${p.computer}/${p.partition}`, p]));
  const rows = (await tx.listBusyPartitions()).filter((p) => byKey.has(`${p.computer_reference}/${p.reference}`));
  const views = rows.map((p): InstanceView => {
    let shared: SharedView[] = [];
    try {
      shared = slaveList(p).filter(isRecord).map((s) => {
        const { slave_title: title, slave_reference: reference, slap_software_type: type, ...rest } = s as Record<string, unknown>;
        return { title: String(title ?? reference ?? ''), software_type: typeof type === 'string' ? type : null, parameters: maskParameters(rest, viewer, reveal) };
      });
    } catch { /* an unreadable list shows as none */ }
    return {
      ...(byKey.get(`${p.computer_reference}/${p.reference}`) as PartitionView),
      parameters: maskParameters(instanceXmlToDict(p.xml), viewer, reveal),
      connection_parameters: maskParameters(instanceXmlToDict(p.connection_xml), viewer, reveal),
      shared, children: [],
    };
  });
  const roots: InstanceView[] = [];
  const rootByTitle = new Map(views.filter((v) => v.root === v.title).map((v) => [v.title, v]));
  for (const v of views) {
    const root = v.root === v.title ? undefined : rootByTitle.get(v.root);
    if (root) root.children.push(v);
    else roots.push(v);
  }
  return roots;
}

export type Scope =
  | { kind: 'fleet' }
  | { kind: 'computer'; computer: string }
  | { kind: 'partition'; computer: string; partition: string }
  | { kind: 'instance'; title: string };

/** "fleet", "computer:<id>", "partition:<computer>/<partition>", "instance:<root title>" (its whole tree). */
export function parseScope(text: string): Scope | null {
  if (text === 'fleet' || text === '') return { kind: 'fleet' };
  const colon = text.indexOf(':');
  const kind = text.slice(0, colon);
  const rest = text.slice(colon + 1);
  if (colon < 0 || rest === '') return null;
  if (kind === 'computer') return { kind, computer: rest };
  if (kind === 'instance') return { kind, title: rest };
  if (kind === 'partition') {
    const slash = rest.indexOf('/');
    if (slash <= 0 || slash === rest.length - 1) return null;
    return { kind, computer: rest.slice(0, slash), partition: rest.slice(slash + 1) };
  }
  return null;
}

/** The usage series of a scope over a range ending at `now`, cut to what the viewer may see. */
export async function gatherUsage(tx: Tx, viewer: Viewer, scope: Scope, resource: SeriesResource, range: Range, now: number): Promise<Series> {
  const { seconds, resolution } = RANGES[range];
  const from = now - seconds;
  const computer = scope.kind === 'computer' || scope.kind === 'partition' ? scope.computer : viewer.computer;
  let rows = await tx.listSeries(resource, resolution, from, now + 1, computer);
  if (scope.kind === 'partition') rows = rows.filter((r) => r.partition_reference === scope.partition);
  if (scope.kind === 'instance') {
    const tree = new Set((await tx.listBusyPartitions())
      .filter((p) => p.partition_reference === scope.title || p.requested_by === scope.title)
      .map((p) => `${p.computer_reference}/${p.reference}`));
    rows = rows.filter((r) => tree.has(`${r.computer_reference}/${r.partition_reference}`));
  }
  rows = rows.filter((r) => canSee(viewer, r.computer_reference, r.partition_reference));
  return sumSeries(resource, resolution, from, now, rows);
}
