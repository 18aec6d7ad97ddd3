// What nodes ask and report: format, computer information, software release
// and partition reports, usage. Each function runs inside one transaction.
import { isRecord, type PyObject, type PyValue } from '../slap/pyvalue.js';
import { computerObject, softwareReleaseObject } from '../slap/shapes.js';
import { readXmlTree } from '../slap/xml-tree.js';
import { partitionObject } from './render.js';
import type { NetworkRow, PartitionRow, SoftwareRow, Tx } from './store.js';
import { ANSWER_LIMITS } from './limits.js';
import { badRequest, checkId, MasterError, notFound } from './validate.js';
import { recordJournal } from './usage-series.js';

export interface MasterSettings {
  /** The computer used when a request names none ([slapproxy] computer_id). */
  defaultComputer: string;
}

/** Timestamps only move forward, even when two bumps land in the same clock tick. */
export function nextTimestamp(previous: number | null): number {
  const now = (performance.timeOrigin + performance.now()) / 1000;
  return previous !== null && now <= previous ? previous + 1e-6 : now;
}

const text = (value: PyValue | undefined): string | null => (typeof value === 'string' ? value : null);

/** loadComputerConfigurationFromXML: the computer and its partitions as slapformat sends them. */
export async function loadComputer(tx: Tx, value: PyValue): Promise<string> {
  if (!isRecord(value)) throw badRequest('computer configuration must be a dictionary');
  const reference = checkId('computer reference', text(value.reference) ?? undefined);
  await tx.upsertComputer({ reference, address: text(value.address), netmask: text(value.netmask) });
  const partitions = value.partition_list ?? [];
  if (!Array.isArray(partitions)) throw badRequest('partition_list must be a list');
  const keep: string[] = [];
  const network: NetworkRow[] = [];
  for (const p of partitions) {
    if (!isRecord(p)) throw badRequest('every partition must be a dictionary');
    const ref = checkId('partition reference', text(p.reference) ?? undefined);
    if (keep.includes(ref)) throw badRequest(`partition ${ref} listed twice`);
    keep.push(ref);
    const tap = isRecord(p.tap) ? text(p.tap.name) : null;
    const addresses = Array.isArray(p.address_list) ? p.address_list : [];
    for (const a of addresses) {
      if (!isRecord(a) || typeof a.addr !== 'string') throw badRequest(`bad address in partition ${ref}`);
      network.push({ partition_reference: ref, computer_reference: reference, reference: tap || ref, address: a.addr, netmask: text(a.netmask) });
    }
  }
  await tx.deletePartitionsExcept(reference, keep);
  for (const ref of keep) await tx.insertPartition(reference, ref);
  await tx.replaceNetwork(reference, network);
  await checkServable(tx, reference);
  return reference;
}

/**
 * Upper bounds on what stored text costs in a getFullComputerInformation
 * answer, from one linear scan (no parsing, no rendering): the answer escapes
 * every character at most 10 times over (`&` → `&amp;amp;`, non-ASCII →
 * `&amp;#NNNNNNN;`), and each element stored is at most one answer element.
 */
export interface Cost {
  bytes: number;
  elements: number;
}

// Characters the answer escapes (up to 10 bytes each); everything else costs 1.
const ESCAPED = /[&<>\r\u007f-\uffff]/g;
const NON_ASCII = /[\u007f-\uffff]/g;

const countOf = (text: string, pattern: RegExp): number => text.match(pattern)?.length ?? 0;

/** Plain text written `times` into the answer (ids, URLs, addresses). */
function textCost(value: string | null | undefined, times = 1): number {
  if (!value) return 0;
  return (value.length + 9 * countOf(value, ESCAPED)) * times;
}

/**
 * Instance XML (parameters, connection parameters) as decoded into the answer:
 * an entity is one character (≤ 10 bytes there), each element costs at most
 * 24 bytes of markup (`<string>…</string>` for one of its two tags). Native
 * searches (indexOf, one regex) rather than a loop over every character.
 */
function instanceXmlCost(xml: string | null, into: Cost): void {
  if (!xml) return;
  into.bytes += xml.length + 9 * countOf(xml, NON_ASCII);
  for (let i = xml.indexOf('<'); i !== -1; i = xml.indexOf('<', i + 1)) {
    into.bytes += 23;
    into.elements += 1;
  }
  for (let i = xml.indexOf('&'); i !== -1; i = xml.indexOf('&', i + 1)) {
    const end = xml.indexOf(';', i);
    // The entity's own characters are already in the length: it costs 10 in all.
    into.bytes += end !== -1 && end - i < 10 ? 10 - (end - i + 1) : 9;
  }
}

/**
 * True when replacing a stored instance XML by `after` can grow the answer:
 * republishing the same (or smaller) connection parameters, what every node
 * run does, needs no check of the whole computer.
 */
export function instanceXmlGrows(before: string | null, after: string): boolean {
  const old: Cost = { bytes: 0, elements: 0 };
  const next: Cost = { bytes: 0, elements: 0 };
  instanceXmlCost(before, old);
  instanceXmlCost(after, next);
  return next.bytes > old.bytes || next.elements > old.elements;
}

/** A stored marshalled document (shared-instance list) re-marshalled in the answer: same text, longer ids. */
function marshalledCost(xml: string | null, into: Cost): void {
  if (!xml) return;
  into.bytes += xml.length;
  for (let i = xml.indexOf('<'); i !== -1; i = xml.indexOf('<', i + 1)) {
    into.bytes += 8;
    into.elements += 1;
  }
}

/**
 * Refuses (413) a write, inside its transaction, when it could make the
 * computer's getFullComputerInformation answer larger than nodes accept
 * (ANSWER_LIMITS): the write is rolled back instead of leaving a computer no
 * node can read. The bound comes from the stored rows in one linear scan
 * (`Cost`): never below the real answer, ~1.5× above it for ordinary
 * parameters, so a write is refused a little before the exact limit, never
 * after; it never renders the answer (that would let one partition make every
 * write of its computer slow).
 */
export async function checkServable(tx: Tx, computer: string): Promise<void> {
  refuseUnservable(computer, await answerBound(tx, computer));
}

/** Throws checkServable's 413 when the bound exceeds what nodes accept. */
export function refuseUnservable(computer: string, cost: Cost): void {
  const refuse = (what: string, value: number, limit: number) =>
    new MasterError(413, `refused: computer ${computer}'s information would become up to ${Math.ceil(value)} ${what}, more than nodes accept (${limit})`);
  if (cost.bytes > ANSWER_LIMITS.maxBytes) throw refuse('bytes', cost.bytes, ANSWER_LIMITS.maxBytes);
  if (cost.elements > ANSWER_LIMITS.maxElements) throw refuse('XML elements', cost.elements, ANSWER_LIMITS.maxElements);
}

/** The upper bound of checkServable: bytes and elements of the computer's answer. */
export async function answerBound(tx: Tx, computer: string): Promise<Cost> {
  return answerBoundOf(computer, await tx.listPartitions(computer), await tx.listSoftware(computer), await tx.listComputerNetwork(computer));
}

/** answerBound from the computer's rows. */
export function answerBoundOf(computer: string, partitions: PartitionRow[], software: SoftwareRow[], network: NetworkRow[]): Cost {
  const cost: Cost = { bytes: 1024 + textCost(computer, 2), elements: 32 };
  for (const p of partitions) {
    cost.bytes += 2048 + textCost(computer, 6) + textCost(p.reference, 4) + textCost(p.software_release, 3) +
      textCost(p.software_type, 2) + textCost(p.partition_reference, 2) + textCost(p.requested_by, 2);
    cost.elements += 64;
    instanceXmlCost(p.xml, cost);
    instanceXmlCost(p.connection_xml, cost);
    marshalledCost(p.slave_instance_list, cost);
  }
  for (const s of software) {
    cost.bytes += 1024 + textCost(s.url) + textCost(computer, 2);
    cost.elements += 24;
  }
  for (const n of network) {
    cost.bytes += 256 + textCost(n.reference, 2) + textCost(n.address, 2) + textCost(n.netmask, 2);
    cost.elements += 4;
  }
  return cost;
}

export async function computerInformation(tx: Tx, settings: MasterSettings, computer: string): Promise<PyObject> {
  const known = await tx.getComputer(computer);
  if (!known && computer !== settings.defaultComputer) throw notFound(`unknown computer ${computer}`);
  const software = await tx.listSoftware(computer);
  const partitions = await tx.listPartitions(computer);
  const network = new Map<string, NetworkRow[]>();
  for (const n of await tx.listComputerNetwork(computer)) {
    const list = network.get(n.partition_reference);
    if (list) list.push(n);
    else network.set(n.partition_reference, [n]);
  }
  const objects = partitions.map((p) => partitionObject(p, network.get(p.reference) ?? []));
  return computerObject(
    computer,
    software.map((s) => softwareReleaseObject(s.url, computer, s.requested_state)),
    objects,
  );
}

export async function requirePartition(tx: Tx, computer: string, partition: string): Promise<PartitionRow> {
  const row = await tx.getPartition(checkId('computer id', computer), checkId('partition id', partition));
  if (!row) throw notFound(`unknown partition ${partition} of computer ${computer}`);
  return row;
}

export async function registerPartition(tx: Tx, computer: string, partition: string): Promise<PyObject> {
  const row = await requirePartition(tx, computer, partition);
  return partitionObject(row, await tx.listNetwork(computer, partition));
}

export async function supply(tx: Tx, settings: MasterSettings, url: string, computer: string, state: string): Promise<string> {
  // A typo in the computer id would queue a release no node ever fetches: refused
  // (the configured computer_id is known before its node's first format, as in computerInformation).
  if (!(await tx.getComputer(computer)) && computer !== settings.defaultComputer) {
    throw notFound(`unknown computer ${computer}: no node has registered it (run slapos node format on it first, or check the id)`);
  }
  await tx.upsertSoftware(url, computer, state);
  await checkServable(tx, computer);
  return `Supplied '${url}' to be ${state}`;
}

/** building / available / error reports: recorded (the reference drops them). */
export async function reportSoftware(tx: Tx, url: string, computer: string, state: string, errorLog: string | null): Promise<void> {
  await tx.reportSoftware(url, computer, state, errorLog, Date.now() / 1000);
}

export async function destroyedSoftware(tx: Tx, url: string, computer: string): Promise<void> {
  await tx.deleteSoftware(url, computer);
}

/** started / stopped / error reports of a partition: recorded. */
export async function reportPartition(
  tx: Tx, computer: string, partition: string, state: string, errorLog: string | null,
): Promise<void> {
  await requirePartition(tx, computer, partition);
  await tx.updatePartition(computer, partition, { reported_state: state, error_log: errorLog, reported_at: Date.now() / 1000 });
}

/**
 * useComputer: a TioXML journal, checked for well-formedness, then stored. A
 * report whose id the computer already posted (sent again because the node
 * was killed before it noted our answer) is acknowledged and not stored
 * twice. Returns whether it was new.
 */
export async function storeUsage(tx: Tx, computer: string, useString: string, reportId: string | null = null): Promise<boolean> {
  if (!(await tx.getComputer(computer))) throw notFound(`unknown computer ${computer}`);
  checkJournal(useString);
  const now = Date.now() / 1000;
  if (!(await tx.insertUsage(computer, useString, now, reportId))) return false;
  await recordJournal(tx, computer, useString, now);
  return true;
}

/** A usage report must be a well-formed TioXML journal (400 otherwise). */
export function checkJournal(useString: string): void {
  let root;
  try {
    root = readXmlTree(useString);
  } catch (error) {
    throw badRequest(`use_string: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (root.name !== 'journal') throw badRequest(`use_string must be a TioXML <journal>, not <${root.name.slice(0, 40)}>`);
}
