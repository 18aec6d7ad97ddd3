// Pure part of the master-scale benchmark: what each simulated computer (and
// client user) sends during the measured window, and when.
//
// The mix is our node's at its default schedules (src/config/schema.ts):
// - the software and instance loops each run every minute ("* * * * *") and
//   each asks getFullComputerInformation once; a no-op pass sends nothing
//   else (src/software/loop.ts, src/instance/partition.ts report changes only);
// - every allocated partition is processed again once a day
//   (maximum_periodicity 86400) and reports startedComputerPartition;
// - an instance changed by its owner (assumed: once a day each) is processed
//   and publishes its connection parameters (setComputerPartitionConnectionXml)
//   then reports started;
// - the software loop reports one release state (availableSoftwareRelease) a
//   day, the report loop posts one usage journal (useComputer) a day;
// - `clients` users each read one instance, one computer and one search
//   every 10 s (slapos service info / computer info / service list by title).
// Minute events run at their real rate; a computer's phase in the minute is
// spread evenly (golden ratio). Day events are compressed `dayCompression`
// times (a day lasts 86400/K s), so that a short window still holds enough
// writes to measure them; that makes the writes K times heavier than real.
import { dumps } from '../src/slap/marshal-encode.js';

export interface LoadPlan {
  urls: string[];
  computers: number;
  partitions: number;
  /** Fraction of partitions allocated. */
  busy: number;
  windowMs: number;
  dayCompression: number;
  clients: number;
  /** Send Accept-Encoding: gzip as the reference's node does (ours does not: the master inflates its cached answer). */
  gzip?: boolean;
}

export interface Planned {
  /** ms from the window's start. */
  at: number;
  endpoint: string;
  method: 'GET' | 'POST';
  path: string;
  body?: string;
  computer?: number;
}

const MINUTE = 60_000;
const DAY = 86_400_000;
const GOLDEN = 0.6180339887498949;
export const SOFTWARE_URL = 'https://lab.example.com/software/bench/software.cfg';

/** A fraction in [0, 1) for (a, b, salt), evenly spread. */
export function phase(a: number, b = 0, salt = 0): number {
  const x = (a * GOLDEN + b * 0.7548776662466927 + salt * 0.5698402909980532) % 1;
  return x < 0 ? x + 1 : x;
}

/** Times in [0, window) of an event of period `period` at phase `p` (fraction of the period). */
export function occurrences(p: number, period: number, windowMs: number): number[] {
  const out: number[] = [];
  for (let t = p * period; t < windowMs; t += period) out.push(t);
  return out;
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();

export const busyCount = (plan: Pick<LoadPlan, 'partitions' | 'busy'>) => Math.floor(plan.partitions * plan.busy);

export function computerSchedule(plan: LoadPlan, c: number): Planned[] {
  const id = `COMP-${c}`;
  const out: Planned[] = [];
  const day = DAY / plan.dayCompression;
  const w = plan.windowMs;
  const p = phase(c);
  // Software loop then, a moment later, the instance loop (its own process).
  for (const t of occurrences(p, MINUTE, w)) {
    out.push({ at: t, endpoint: 'getFullComputerInformation', method: 'GET', path: `/getFullComputerInformation?computer_id=${id}`, computer: c });
  }
  for (const t of occurrences((p * MINUTE + 500) % MINUTE / MINUTE, MINUTE, w)) {
    out.push({ at: t, endpoint: 'getFullComputerInformation', method: 'GET', path: `/getFullComputerInformation?computer_id=${id}`, computer: c });
  }
  for (let q = 0; q < busyCount(plan); q++) {
    const partition = `slappart${q}`;
    const started = form({ computer_id: id, computer_partition_id: partition });
    for (const t of occurrences(phase(c, q, 1), day, w)) {
      out.push({ at: t, endpoint: 'startedComputerPartition', method: 'POST', path: '/startedComputerPartition', body: started, computer: c });
    }
    for (const t of occurrences(phase(c, q, 2), day, w)) {
      const connection = dumps({ 'url-ipv6': `http://[fd00::${c.toString(16)}:${q}]:8080/`, changed: String(Math.round(t)) });
      out.push({
        at: t, endpoint: 'setComputerPartitionConnectionXml', method: 'POST', path: '/setComputerPartitionConnectionXml', computer: c,
        body: form({ computer_id: id, computer_partition_id: partition, connection_xml: connection, slave_reference: 'None' }),
      });
      out.push({ at: t + 50, endpoint: 'startedComputerPartition', method: 'POST', path: '/startedComputerPartition', body: started, computer: c });
    }
  }
  for (const t of occurrences(phase(c, 0, 3), day, w)) {
    out.push({ at: t, endpoint: 'availableSoftwareRelease', method: 'POST', path: '/availableSoftwareRelease', body: form({ url: SOFTWARE_URL, computer_id: id }), computer: c });
  }
  for (const t of occurrences(phase(c, 0, 4), day, w)) {
    out.push({ at: t, endpoint: 'useComputer', method: 'POST', path: '/useComputer', body: form({ computer_id: id, use_string: usageJournal(id, plan.partitions) }), computer: c });
  }
  return out;
}

/** A TioXML journal with one CPU movement per partition (the report loop's shape). */
export function usageJournal(id: string, partitions: number): string {
  const movements = Array.from({ length: partitions }, (_, q) =>
    `    <movement>\n      <resource>CPU Consumption</resource>\n      <title>Title Partition</title>\n      <reference>slappart${q}</reference>\n` +
    `      <quantity>${(q * 1.5).toFixed(1)}</quantity>\n      <price>0.0</price>\n      <VAT>None</VAT>\n      <category>None</category>\n    </movement>\n`).join('');
  return `<?xml version='1.0' encoding='utf-8'?>\n<journal>\n  <transaction type="Sale Packing List">\n    <title>Resource consumptions</title>\n` +
    `    <start_date></start_date>\n    <stop_date>2026-12-07 at 00:00:00</stop_date>\n    <reference>${id}</reference>\n    <currency></currency>\n` +
    `    <payment_mode></payment_mode>\n    <category></category>\n    <arrow type="Administration">\n      <source></source>\n      <destination></destination>\n    </arrow>\n` +
    `${movements}  </transaction>\n</journal>\n`;
}

const SERVICE_LIST = 'portal_type:"Instance Tree" AND validation_state:validated';

/** One client user: service info, computer info and a search by title every 10 s, on a computer of its own. */
export function clientSchedule(plan: LoadPlan, u: number): Planned[] {
  const c = Math.floor(phase(u, 0, 5) * plan.computers);
  const title = `inst-${c}-0`;
  const out: Planned[] = [];
  for (const t of occurrences(phase(u, 0, 6), 10_000, plan.windowMs)) {
    out.push({ at: t, endpoint: 'hateoas (instance)', method: 'GET', path: `/hateoas/partitions/${title}`, computer: c });
    out.push({ at: t + 20, endpoint: 'hateoas (computer)', method: 'GET', path: `/hateoas/computers/COMP-${c}`, computer: c });
    out.push({
      at: t + 40, endpoint: 'hateoas (search)', method: 'GET', computer: c,
      path: `/hateoas/?${new URLSearchParams({ mode: 'search', query: `${SERVICE_LIST} AND title:="${title}"`, select_list: 'title' })}`,
    });
  }
  return out;
}
