// Usage over time, from the TioXML journals the nodes post with useComputer.
// Each movement (partition, resource, quantity of one report period) is added
// to three resolutions of one table (usage_series, migration 4):
//   raw     — one point per report period, kept RAW_DAYS days;
//   hourly  — kept HOURLY_DAYS days (a month range plots hourly points);
//   daily   — kept DAILY_DAYS days (years).
// A bucket keeps the sum, the count and the largest of its quantities, so a
// gauge (memory, CPU load) reads as the mean and a counter (network, io) as
// the sum, whatever the resolution. Planning here is pure; the store runs it.
import { readXmlTree, type XmlElement } from '../slap/xml-tree.js';
import type { SeriesBucketRow } from './store.js';

export const RAW = 0;
export const HOUR = 3600;
export const DAY = 86400;
export type Resolution = typeof RAW | typeof HOUR | typeof DAY;

export const RAW_DAYS = 8;
export const HOURLY_DAYS = 100;
export const DAILY_DAYS = 3660;
export const RETENTION: Record<Resolution, number> = { [RAW]: RAW_DAYS * DAY, [HOUR]: HOURLY_DAYS * DAY, [DAY]: DAILY_DAYS * DAY };

/** The resources kept as series (the node's movements, accounting/aggregate.ts); others stay in usage_report only. */
export const SERIES_RESOURCES = {
  'service_module/cpu_load_percent': { label: 'CPU', unit: '% of one CPU', kind: 'gauge' },
  'service_module/memory_used': { label: 'Memory', unit: 'MiB', kind: 'gauge' },
  'service_module/disk_used': { label: 'Disk', unit: 'MiB', kind: 'gauge' },
  'service_module/network_in': { label: 'Network in', unit: 'MiB', kind: 'counter' },
  'service_module/network_out': { label: 'Network out', unit: 'MiB', kind: 'counter' },
  'service_module/io_read': { label: 'Disk read', unit: 'MiB', kind: 'counter' },
  'service_module/io_write': { label: 'Disk written', unit: 'MiB', kind: 'counter' },
} as const;
export type SeriesResource = keyof typeof SERIES_RESOURCES;
export const isSeriesResource = (r: string): r is SeriesResource => Object.hasOwn(SERIES_RESOURCES, r);

/** Short names for URLs and the API: cpu, memory, disk, network_in, … */
export const RESOURCE_NAMES: Record<string, SeriesResource> = Object.fromEntries(
  Object.keys(SERIES_RESOURCES).map((r) => [r.replace('service_module/', '').replace('cpu_load_percent', 'cpu').replace('memory_used', 'memory').replace('disk_used', 'disk'), r as SeriesResource]),
);

export interface UsagePoint {
  partition: string;
  resource: SeriesResource;
  /** Start of the report period (unix seconds). */
  at: number;
  quantity: number;
}

export interface SeriesWrite {
  partition: string;
  resource: SeriesResource;
  resolution: Resolution;
  bucket: number;
  /** Sum, count and largest of the quantities added to the bucket. */
  total: number;
  samples: number;
  maximum: number;
}

const text = (e: XmlElement, name: string) => e.children.find((c) => c.name === name)?.text.trim() ?? '';

/** "YYYY-MM-DD HH:MM:SS" or the reference's "YYYY-MM-DD at HH:MM:SS" (UTC), else null. */
export function parseTioDate(value: string): number | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?: at |T| )(\d{2}):(\d{2}):(\d{2})$/.exec(value.trim());
  if (!m) return null;
  const at = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
  return Number.isFinite(at) ? at : null;
}

/**
 * The series points of a journal: movements of known resources with a
 * partition reference and a finite quantity. A transaction's time is its
 * start_date, else its stop_date (the reference sends only that), else when it was received.
 */
export function journalPoints(journal: string, receivedAt: number): UsagePoint[] {
  let root: XmlElement;
  try {
    root = readXmlTree(journal);
  } catch {
    return [];
  }
  const points: UsagePoint[] = [];
  for (const transaction of root.children.filter((c) => c.name === 'transaction')) {
    const at = parseTioDate(text(transaction, 'start_date')) ?? parseTioDate(text(transaction, 'stop_date')) ?? receivedAt;
    for (const movement of transaction.children.filter((c) => c.name === 'movement')) {
      const resource = text(movement, 'resource');
      const partition = text(movement, 'reference');
      const quantity = Number(text(movement, 'quantity'));
      if (!isSeriesResource(resource) || partition === '' || !Number.isFinite(quantity)) continue;
      points.push({ partition, resource, at, quantity });
    }
  }
  return points;
}

/**
 * The rows to add for these points at `now`: each point in every resolution it
 * is still kept in, points of one bucket merged (one write per bucket: a
 * multi-row upsert may not name a row twice on PostgreSQL).
 */
export function seriesWrites(points: readonly UsagePoint[], now: number): SeriesWrite[] {
  const out = new Map<string, SeriesWrite>();
  for (const p of points) {
    for (const resolution of [RAW, HOUR, DAY] as const) {
      const bucket = resolution === RAW ? p.at : Math.floor(p.at / resolution) * resolution;
      if (bucket + (resolution || 0) < now - RETENTION[resolution]) continue;
      const key = `${p.partition}\0${p.resource}\0${resolution}\0${bucket}`;
      const known = out.get(key);
      if (!known) out.set(key, { partition: p.partition, resource: p.resource, resolution, bucket, total: p.quantity, samples: 1, maximum: p.quantity });
      else if (resolution === RAW) Object.assign(known, { total: p.quantity, samples: 1, maximum: p.quantity }); // one period, one value: the last wins
      else Object.assign(known, { total: known.total + p.quantity, samples: known.samples + 1, maximum: Math.max(known.maximum, p.quantity) });
    }
  }
  return [...out.values()];
}

export type Range = 'hour' | 'day' | 'week' | 'month' | 'year';
export const RANGES: Record<Range, { seconds: number; resolution: Resolution }> = {
  hour: { seconds: HOUR, resolution: RAW },
  day: { seconds: DAY, resolution: RAW },
  week: { seconds: 7 * DAY, resolution: HOUR },
  month: { seconds: 31 * DAY, resolution: HOUR },
  year: { seconds: 366 * DAY, resolution: DAY },
};
export const isRange = (r: string): r is Range => Object.hasOwn(RANGES, r);

/** One stored bucket of one partition (a usage_series row). */
export type SeriesBucket = SeriesBucketRow;

/** A bucket's value: the mean for a gauge, the sum for a counter. */
export const bucketValue = (resource: SeriesResource, b: SeriesBucket) =>
  (SERIES_RESOURCES[resource].kind === 'gauge' ? b.total / Math.max(1, b.samples) : b.total);

export interface Series {
  resource: SeriesResource;
  label: string;
  unit: string;
  kind: 'gauge' | 'counter';
  resolution: Resolution;
  from: number;
  to: number;
  /** Bucket starts (unix seconds), ascending. */
  times: number[];
  /** The scope's value per bucket: the sum over its partitions of each one's value. */
  values: number[];
  /** Per partition ("computer/partition") totals over the range, for the table beside the plot. */
  parts: Array<{ computer: string; partition: string; mean: number; max: number; total: number }>;
}

/** Sums the buckets of the partitions in scope into one series (pure). */
export function sumSeries(resource: SeriesResource, resolution: Resolution, from: number, to: number, rows: readonly SeriesBucket[]): Series {
  const byTime = new Map<number, number>();
  const parts = new Map<string, { computer: string; partition: string; sum: number; n: number; max: number; total: number }>();
  for (const row of rows) {
    const value = bucketValue(resource, row);
    byTime.set(row.bucket, (byTime.get(row.bucket) ?? 0) + value);
    const key = `${row.computer_reference}/${row.partition_reference}`;
    const part = parts.get(key) ?? { computer: row.computer_reference, partition: row.partition_reference, sum: 0, n: 0, max: -Infinity, total: 0 };
    part.sum += value;
    part.n += 1;
    part.max = Math.max(part.max, SERIES_RESOURCES[resource].kind === 'gauge' ? row.maximum : value);
    part.total += row.total;
    parts.set(key, part);
  }
  const times = [...byTime.keys()].sort((a, b) => a - b);
  const meta = SERIES_RESOURCES[resource];
  return {
    resource, label: meta.label, unit: meta.unit, kind: meta.kind, resolution, from, to, times,
    values: times.map((t) => byTime.get(t) ?? 0),
    parts: [...parts.values()]
      .sort((a, b) => a.computer.localeCompare(b.computer) || a.partition.localeCompare(b.partition, 'en', { numeric: true }))
      .map((p) => ({ computer: p.computer, partition: p.partition, mean: p.sum / p.n, max: p.max, total: p.total })),
  };
}

/** Adds a journal's points to the series of its computer, and drops what is past its retention. */
export async function recordJournal(
  tx: { addSeries: (c: string, w: SeriesWrite[]) => Promise<void>; pruneSeries: (r: number, before: number) => Promise<number> },
  computer: string, journal: string, now: number,
): Promise<number> {
  const writes = seriesWrites(journalPoints(journal, now), now);
  await tx.addSeries(computer, writes);
  for (const resolution of [RAW, HOUR, DAY] as const) await tx.pruneSeries(resolution, now - RETENTION[resolution]);
  return writes.length;
}
