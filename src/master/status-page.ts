// The read-only status page at "/": computers, allocated partitions, software
// releases with their reported state and errors, the latest usage per
// partition. One self-contained HTML document (inline CSS, no script), every
// value escaped. Data gathering (one read transaction) is apart from rendering.
import { readXmlTree, type XmlElement } from '../slap/xml-tree.js';
import type { ComputerRow, NetworkRow, PartitionRow, SoftwareRow, Tx, UsageRow } from './store.js';

export interface UsageLine {
  partition: string;
  resource: string;
  quantity: string;
}

export interface ComputerStatus {
  computer: ComputerRow;
  busy: PartitionRow[];
  freeCount: number;
  network: Map<string, NetworkRow[]>;
  software: SoftwareRow[];
  usage: { receivedAt: number; lines: UsageLine[] } | null;
}

export async function gatherStatus(tx: Tx): Promise<ComputerStatus[]> {
  const usage = new Map<string, UsageRow>((await tx.latestUsage()).map((u) => [u.computer_reference, u]));
  const out: ComputerStatus[] = [];
  for (const computer of await tx.listComputers()) {
    const partitions = await tx.listPartitions(computer.reference);
    const network = new Map<string, NetworkRow[]>();
    for (const n of await tx.listComputerNetwork(computer.reference)) network.set(n.partition_reference, [...(network.get(n.partition_reference) ?? []), n]);
    const report = usage.get(computer.reference);
    out.push({
      computer,
      busy: partitions.filter((p) => p.slap_state === 'busy'),
      freeCount: partitions.filter((p) => p.slap_state === 'free').length,
      network,
      software: await tx.listSoftware(computer.reference),
      usage: report ? { receivedAt: report.received_at, lines: usageLines(report.use_string) } : null,
    });
  }
  return out;
}

const child = (e: XmlElement, name: string) => e.children.find((c) => c.name === name)?.text.trim() ?? '';

/** Movements of a TioXML journal: partition (movement reference), resource, quantity. */
export function usageLines(journal: string): UsageLine[] {
  let root: XmlElement;
  try {
    root = readXmlTree(journal);
  } catch {
    return [];
  }
  const lines: UsageLine[] = [];
  const walk = (e: XmlElement) => {
    if (e.name === 'movement') lines.push({ partition: child(e, 'reference'), resource: child(e, 'resource'), quantity: child(e, 'quantity') });
    else e.children.forEach(walk);
  };
  walk(root);
  return lines;
}

export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const time = (seconds: number | null) => (seconds === null ? '' : new Date(seconds * 1000).toISOString().replace('T', ' ').slice(0, 19));

const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f2f2f2}.error{color:#a00;white-space:pre-wrap;max-width:60em}.muted{color:#777}code{font-size:.95em}`;

function partitionTable(s: ComputerStatus): string {
  if (s.busy.length === 0) return `<p class="muted">No allocated partition (${s.freeCount} free).</p>`;
  const rows = s.busy.map((p) => {
    const addresses = (s.network.get(p.reference) ?? []).map((n) => escapeHtml(n.address)).join('<br>');
    return `<tr><td><code>${escapeHtml(p.reference)}</code></td><td class="instance">${escapeHtml(p.partition_reference)}</td>` +
      `<td>${escapeHtml(p.requested_by || '')}</td><td>${escapeHtml(p.requested_state)}</td>` +
      `<td>${escapeHtml(p.reported_state ?? '')}${p.error_log ? `<div class="error">${escapeHtml(p.error_log)}</div>` : ''}</td>` +
      `<td><code>${escapeHtml(p.software_release)}</code><br>${escapeHtml(p.software_type)}</td><td>${addresses}</td></tr>`;
  });
  return `<table><tr><th>Partition</th><th>Instance</th><th>Root</th><th>Requested</th><th>Reported</th><th>Software (type)</th><th>Addresses</th></tr>` +
    `${rows.join('')}</table><p class="muted">${s.freeCount} free partition(s).</p>`;
}

function softwareTable(s: ComputerStatus): string {
  if (s.software.length === 0) return '<p class="muted">No software release supplied.</p>';
  const rows = s.software.map((r) => `<tr><td><code>${escapeHtml(r.url)}</code></td><td>${escapeHtml(r.requested_state)}</td>` +
    `<td>${escapeHtml(r.reported_state ?? 'not reported')} <span class="muted">${escapeHtml(time(r.reported_at))}</span>` +
    `${r.error_log ? `<div class="error">${escapeHtml(r.error_log)}</div>` : ''}</td></tr>`);
  return `<table><tr><th>Software release</th><th>Requested</th><th>Install status</th></tr>${rows.join('')}</table>`;
}

function usageTable(s: ComputerStatus): string {
  if (!s.usage) return '<p class="muted">No usage report received.</p>';
  const rows = s.usage.lines.map((l) => `<tr><td><code>${escapeHtml(l.partition)}</code></td><td>${escapeHtml(l.resource)}</td><td>${escapeHtml(l.quantity)}</td></tr>`);
  return `<p>Latest usage report: ${escapeHtml(time(s.usage.receivedAt))}</p>` +
    (rows.length ? `<table><tr><th>Partition</th><th>Resource</th><th>Quantity</th></tr>${rows.join('')}</table>` : '');
}

export function renderStatusPage(status: ComputerStatus[], now = new Date()): string {
  const sections = status.map((s) => `<section><h2>Computer <code>${escapeHtml(s.computer.reference)}</code> ` +
    `<span class="muted">${escapeHtml(s.computer.address ?? '')}</span></h2>` +
    `<h3>Partitions</h3>${partitionTable(s)}<h3>Software releases</h3>${softwareTable(s)}<h3>Usage</h3>${usageTable(s)}</section>`);
  return `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>SlapOS master status</title>` +
    `<meta name="viewport" content="width=device-width"><style>${CSS}</style></head><body>` +
    `<h1>SlapOS master status</h1><p class="muted">${status.length} computer(s), generated ${escapeHtml(now.toISOString())}</p>` +
    `${sections.join('\n') || '<p>No computer registered yet.</p>'}</body></html>\n`;
}
