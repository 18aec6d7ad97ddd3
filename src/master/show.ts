// `slapos proxy show`: the reference's listing of the master's database
// (slapos/cli/proxy_show.py) read from our store: tables drawn as its
// prettytable (border, no vertical rules, no padding, centred), published
// parameters, addresses. Columns are ours (no "17" suffix, our state columns).
import { createHash } from 'node:crypto';
import { instanceXmlToDict } from '../slap/instance-xml.js';
import { isRecord } from '../slap/pyvalue.js';
import { slaveList } from './render.js';
import type { Store } from './store.js';

type Cell = string | number | null;

/** Python's str() of a cell; None is shown "-" (the reference's coalesce). */
function cellText(value: Cell): string {
  if (value === null) return '-';
  if (typeof value === 'number') return String(value);
  return value;
}

/** prettytable's centring: the odd space goes right of odd-length text, left of even-length text. */
function centre(text: string, width: number): string {
  const excess = width - [...text].length;
  const half = Math.floor(excess / 2);
  if (excess % 2 === 0) return ' '.repeat(half) + text + ' '.repeat(half);
  return [...text].length % 2 === 1 ? ' '.repeat(half) + text + ' '.repeat(half + 1) : ' '.repeat(half + 1) + text + ' '.repeat(half);
}

/** A table as prettytable draws it with border=True, padding_width=0, vrules=NONE. */
export function drawTable(columns: string[], rows: Cell[][]): string[] {
  const texts = rows.map((row) => row.map(cellText));
  const widths = columns.map((c, i) => Math.max([...c].length, ...texts.map((r) => [...(r[i] ?? '')].length)));
  const rule = `-${widths.map((w) => '-'.repeat(w + 1)).join('')}`;
  const line = (cells: string[]) => ` ${cells.map((c, i) => `${centre(c, widths[i] ?? 0)} `).join('')}`;
  return [rule, line(columns), rule, ...texts.map(line), rule];
}

function table(name: string, columns: string[], rows: Cell[][], skipped: string[] = []): string[] {
  if (rows.length === 0) return [`table ${name}: empty`];
  return [skipped.length ? `table ${name}: skipping ${skipped.join(', ')}` : `table ${name}`, ...drawTable(columns, rows)];
}

export type ShowPart = 'computers' | 'software' | 'partitions' | 'slaves' | 'params' | 'network';
export const SHOW_PARTS: readonly ShowPart[] = ['computers', 'software', 'partitions', 'slaves', 'params', 'network'];

/** The listing's lines; every part when `parts` is empty, as the reference. */
export async function showDatabase(store: Store, parts: readonly ShowPart[]): Promise<string[]> {
  const wanted = parts.length === 0 ? SHOW_PARTS : SHOW_PARTS.filter((p) => parts.includes(p));
  return store.read(async (tx) => {
    const computers = await tx.listComputers();
    const partitions = (await Promise.all(computers.map((c) => tx.listPartitions(c.reference)))).flat();
    const busy = partitions.filter((p) => p.slap_state !== 'free');
    const sections: string[][] = [];
    for (const part of wanted) {
      if (part === 'computers') sections.push(table('computer', ['reference', 'address', 'netmask'], computers.map((c) => [c.reference, c.address, c.netmask])));
      if (part === 'software') {
        const software = (await Promise.all(computers.map((c) => tx.listSoftware(c.reference)))).flat();
        sections.push(table('software', ['url', 'computer_reference', 'requested_state', 'reported_state', 'md5'],
          software.map((s) => [s.url, s.computer_reference, s.requested_state, s.reported_state, createHash('md5').update(s.url).digest('hex')])));
      }
      if (part === 'partitions') {
        sections.push(table('partition', ['reference', 'computer_reference', 'slap_state', 'software_release', 'software_type', 'partition_reference', 'requested_by', 'requested_state', 'timestamp'],
          busy.map((p) => [p.reference, p.computer_reference, p.slap_state, p.software_release, p.software_type, p.partition_reference, p.requested_by, p.requested_state, p.timestamp]),
          ['xml', 'connection_xml', 'slave_instance_list']));
      }
      if (part === 'slaves') {
        const rows: Cell[][] = [];
        for (const host of busy) {
          for (const entry of slaveList(host)) {
            if (!isRecord(entry) || typeof entry.slave_reference !== 'string') continue;
            const slave = await tx.getSlave(host.computer_reference, entry.slave_reference);
            rows.push([entry.slave_reference, host.computer_reference, slave?.hosted_by ?? host.reference, slave?.asked_by ?? null]);
          }
        }
        sections.push(table('slave', ['reference', 'computer_reference', 'hosted_by', 'asked_by'], rows, ['connection_xml']));
      }
      if (part === 'params') sections.push(busy.filter((p) => p.connection_xml).flatMap((p) => paramLines(p.reference, p.partition_reference, p.software_type, p.connection_xml ?? '')));
      if (part === 'network') {
        const lines: string[] = [];
        for (const p of [...busy].sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0))) {
          const addresses = (await tx.listNetwork(p.computer_reference, p.reference)).map((n) => n.address);
          if (addresses.length > 0) lines.push(`${p.reference}: ${addresses.join(', ')}`);
        }
        sections.push(lines);
      }
    }
    return sections.flatMap((lines, i) => (i < sections.length - 1 ? [...lines, ' '] : lines));
  });
}

/** Published parameters: ssh keys shortened, a "_" holding JSON re-indented (sorted keys), as the reference. */
function paramLines(reference: string, title: string | null, type: string | null, xml: string): string[] {
  const lines = [`${reference}: ${title ?? 'None'} (type ${type ?? 'None'})`];
  for (const [name, value] of Object.entries(instanceXmlToDict(xml))) {
    let text = value ?? 'None';
    if (value && (name === 'ssh-key' || name === 'ssh-public-key')) text = `${value.slice(0, 20)}...${value.slice(-20)}`;
    if (name === '_' && value) {
      try {
        text = JSON.stringify(sortKeys(JSON.parse(value)), null, 2);
      } catch {
        // not JSON: as is
      }
    }
    lines.push(`    ${name} = ${text}`);
  }
  return lines;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => [k, sortKeys(v)]));
  return value;
}
