// What nodes ask and report: format, computer information, software release
// and partition reports, usage. Each function runs inside one transaction.
import { isRecord, type PyObject, type PyValue } from '../slap/pyvalue.js';
import { computerObject, softwareReleaseObject } from '../slap/shapes.js';
import { readXmlTree } from '../slap/xml-tree.js';
import { partitionObject } from './render.js';
import type { NetworkRow, PartitionRow, Tx } from './store.js';
import { badRequest, checkId, notFound } from './validate.js';

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
  return reference;
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
