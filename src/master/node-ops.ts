// What nodes ask and report: format, computer information, software release
// and partition reports, usage. Each function runs inside one transaction.
import { MarshalError, XmlInputError } from '../slap/errors.js';
import { dumps } from '../slap/marshal-encode.js';
import { isRecord, type PyObject, type PyValue } from '../slap/pyvalue.js';
import { computerObject, softwareReleaseObject } from '../slap/shapes.js';
import { readXmlTree } from '../slap/xml-tree.js';
import { partitionObject } from './render.js';
import type { NetworkRow, PartitionRow, Tx } from './store.js';
import { ANSWER_LIMITS } from './limits.js';
import { badRequest, checkId, MasterError, notFound } from './validate.js';

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

const len = (value: string | null | undefined) => value?.length ?? 0;

/** Elements of a marshalled document (its text is escaped: every raw `<` opens or closes a tag). */
function countElements(xml: string): number {
  let count = 0;
  for (let i = xml.indexOf('<'); i !== -1; i = xml.indexOf('<', i + 1)) if (xml.charCodeAt(i + 1) !== 0x2f) count += 1;
  return count;
}

/**
 * Refuses (413) a write, inside its transaction, when it would make the
 * computer's getFullComputerInformation answer larger than nodes accept
 * (ANSWER_LIMITS): the write is rolled back instead of leaving a computer no
 * node can read. A cheap upper bound from the stored lengths (escaping at most
 * ×9, fixed costs per row) settles the common case; near the limit the answer
 * is rendered and measured.
 */
export async function checkServable(tx: Tx, computer: string): Promise<void> {
  const partitions = await tx.listPartitions(computer);
  const software = await tx.listSoftware(computer);
  const network = await tx.listComputerNetwork(computer);
  let text = computer.length;
  for (const p of partitions) {
    text += len(p.xml) + len(p.connection_xml) + len(p.slave_instance_list) + 2 * len(p.software_release) +
      len(p.software_type) + 2 * len(p.partition_reference) + len(p.requested_by) + 2 * len(p.reference);
  }
  for (const s of software) text += len(s.url);
  for (const n of network) text += len(n.address) + len(n.reference) + len(n.netmask);
  const bytes = 9 * text + 4096 * (partitions.length + 1) + 512 * software.length + 256 * network.length;
  const elements = text / 8 + 100 * (partitions.length + 1) + 30 * software.length + 10 * network.length;
  if (bytes <= ANSWER_LIMITS.maxBytes && elements <= ANSWER_LIMITS.maxElements) return;
  const refuse = (why: string) => new MasterError(413, `refused: computer ${computer}'s information would become ${why}, more than nodes accept`);
  let answer: string;
  try {
    answer = dumps(await computerInformation(tx, { defaultComputer: computer }, computer));
  } catch (error) {
    if (error instanceof XmlInputError || error instanceof MarshalError) throw refuse(`unreadable (${error.message})`);
    throw error;
  }
  if (answer.length > ANSWER_LIMITS.maxBytes) throw refuse(`${answer.length} bytes (limit ${ANSWER_LIMITS.maxBytes})`);
  const count = countElements(answer);
  if (count > ANSWER_LIMITS.maxElements) throw refuse(`${count} XML elements (limit ${ANSWER_LIMITS.maxElements})`);
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

export async function supply(tx: Tx, url: string, computer: string, state: string): Promise<string> {
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

/** useComputer: a TioXML journal, checked for well-formedness, then stored. */
export async function storeUsage(tx: Tx, computer: string, useString: string): Promise<void> {
  if (!(await tx.getComputer(computer))) throw notFound(`unknown computer ${computer}`);
  let root;
  try {
    root = readXmlTree(useString);
  } catch (error) {
    throw badRequest(`use_string: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (root.name !== 'journal') throw badRequest(`use_string must be a TioXML <journal>, not <${root.name.slice(0, 40)}>`);
  await tx.insertUsage(computer, useString, Date.now() / 1000);
}
