// Requests, shared instances, connection parameters, bang, rename and
// destruction (slap-protocol.md §6). Each function runs inside one transaction.
import { dictToInstanceXml } from '../slap/instance-xml.js';
import { isRecord, type PyObject, type PyRecord } from '../slap/pyvalue.js';
import { chooseHost, needsBump, scopeOf, targetState, updateSlaveList, type RequestedState } from './allocation.js';
import { MAX_STORED_XML } from './limits.js';
import { checkServable, instanceXmlGrows, nextTimestamp, requirePartition, type MasterSettings } from './node-ops.js';
import { forgetRelated } from './related-ops.js';
import { instanceReply, slaveList, slaveReply } from './render.js';
import { softwareInstanceObject } from '../slap/shapes.js';
import type { PartitionRow, Tx } from './store.js';
import { badRequest, checkId, MasterError, notFound } from './validate.js';

export interface InstanceRequest {
  softwareRelease: string;
  softwareType: string;
  title: string;
  parameters: PyRecord;
  filter: PyRecord;
  state: RequestedState | null;
  shared: boolean;
  /** Set when a partition requests (computer_id / computer_partition_id). */
  requester?: { computer: string; partition: string };
}

/** Parameters or connection parameters as stored (instance XML), refused (413) past MAX_STORED_XML. */
export function storedXml(kind: string, params: PyRecord): string {
  const xml = dictToInstanceXml(params);
  if (xml.length > MAX_STORED_XML) throw new MasterError(413, `${kind} take ${xml.length} bytes stored, more than ${MAX_STORED_XML}`);
  return xml;
}

const filterText = (filter: PyRecord, key: string): string | null => {
  const value = filter[key];
  return typeof value === 'string' && value !== '' ? value : null;
};

export async function requestInstance(tx: Tx, settings: MasterSettings, req: InstanceRequest): Promise<PyObject> {
  const requester = req.requester ? await requirePartition(tx, req.requester.computer, req.requester.partition) : undefined;
  if (requester && requester.slap_state !== 'busy') throw notFound(`requesting partition ${requester.reference} is not allocated`);
  const scope = scopeOf(requester);
  const computerGuid = filterText(req.filter, 'computer_guid');
  const computer = computerGuid ? checkId('computer_guid', computerGuid) : settings.defaultComputer;
  return req.shared ? requestShared(tx, computer, scope, req) : requestRegular(tx, computer, scope, req);
}

async function requestRegular(tx: Tx, computer: string, scope: string, req: InstanceRequest): Promise<PyObject> {
  const existing = await tx.findInstance(req.title, scope);
  const root = scope ? await tx.findInstance(scope, '') : undefined;
  let row: PartitionRow | undefined = existing;
  if (!row) {
    // Nothing to destroy: the answer says destroyed, as the reference's (which also takes a partition for it; we do not).
    if (req.state === 'destroyed') return goneReply(req);
    if (!(await tx.getComputer(computer))) throw notFound(`unknown computer ${computer}`);
    row = await tx.firstFreePartition(computer);
    if (!row) throw notFound(`no free partition on computer ${computer} for ${req.title}`);
  }
  const wanted = {
    software_release: req.softwareRelease,
    software_type: req.softwareType || 'default',
    xml: storedXml('parameters', req.parameters),
    requested_state: targetState(req.state, existing, root),
  };
  if (needsBump(row, wanted)) {
    const patch = { ...wanted, slap_state: 'busy' as const, partition_reference: req.title, requested_by: scope, timestamp: nextTimestamp(row.timestamp) };
    await tx.updatePartition(row.computer_reference, row.reference, patch);
    await checkServable(tx, row.computer_reference);
    row = { ...row, ...patch };
  }
  return instanceReply(row, await tx.listNetwork(row.computer_reference, row.reference));
}

/** A never-requested instance asked destroyed: on no computer, requested state destroyed. */
function goneReply(req: InstanceRequest): PyObject {
  return softwareInstanceObject({
    _connection_dict: {}, _parameter_dict: {}, _requested_state: 'destroyed', ip_list: [],
    slap_computer_id: null, slap_computer_partition_id: null, slap_server_url: 'slap_server_url',
    slap_software_release_url: req.softwareRelease, slap_software_type: req.softwareType || 'default',
  });
}

async function requestShared(tx: Tx, computer: string, scope: string, req: InstanceRequest): Promise<PyObject> {
  const pinned = filterText(req.filter, 'instance_guid');
  const host = chooseHost(await tx.listPartitions(computer), req.softwareRelease, req.softwareType, pinned);
  if (!host) throw notFound(`no partition of computer ${computer} can host shared instance ${req.title}`);
  const reference = `${scope}_${req.title}`;
  const parametersXml = storedXml('parameters', req.parameters);
  const existing = await tx.getSlave(host.computer_reference, reference);
  // `<scope>_<title>` is ambiguous when titles hold "_": never let one tree's request take another's shared instance.
  if (existing && existing.asked_by !== null && existing.asked_by !== scope) {
    throw new MasterError(403, `shared instance ${reference} belongs to another instance tree`);
  }
  const change = updateSlaveList(slaveList(host), reference, req.softwareType, req.parameters, req.state === 'destroyed', host.slave_instance_list);
  if (change !== undefined) {
    await tx.updatePartition(host.computer_reference, host.reference, { slave_instance_list: change, timestamp: nextTimestamp(host.timestamp) });
    await checkServable(tx, host.computer_reference);
  }
  const slave = existing ?? {
    reference, computer_reference: host.computer_reference, connection_xml: null, hosted_by: host.reference, asked_by: scope,
  };
  slave.hosted_by = host.reference;
  await tx.upsertSlave(slave);
  return slaveReply(host, slave, parametersXml, await tx.listNetwork(host.computer_reference, host.reference));
}

/** Whether a request concerns an instance this master already holds (multimaster: never forwarded then). */
export async function allocatedHere(tx: Tx, req: InstanceRequest): Promise<boolean> {
  if (req.shared) return false;
  const requester = req.requester ? await tx.getPartition(req.requester.computer, req.requester.partition) : undefined;
  return (await tx.findInstance(req.title, scopeOf(requester))) !== undefined;
}

/**
 * setComputerPartitionConnectionXml: no timestamp change (as the reference).
 * A shared instance's connection parameters are set only by the partition
 * hosting it (as the real master; the proxy matched the reference only and
 * moved `hosted_by` to whoever asked): anyone else is 403.
 */
export async function setConnection(
  tx: Tx, computer: string, partition: string, params: PyRecord, slaveReference: string | null,
): Promise<void> {
  const host = await requirePartition(tx, computer, partition);
  const xml = storedXml('connection parameters', params);
  if (slaveReference === null) {
    await tx.updatePartition(computer, partition, { connection_xml: xml });
    if (instanceXmlGrows(host.connection_xml, xml)) await checkServable(tx, computer);
    return;
  }
  const slave = await tx.getSlave(computer, slaveReference);
  // A publish racing the removal of its shared instance is ignored (200), as the reference.
  if (!slave) return;
  // A row without hosted_by (an old database) is hosted by the partition whose list holds it.
  const hosts = slave.hosted_by === host.reference ||
    (slave.hosted_by === null && slaveList(host).some((d) => isRecord(d) && d.slave_reference === slaveReference));
  if (!hosts) throw new MasterError(403, `shared instance ${slaveReference} is not hosted by partition ${partition}`);
  await tx.upsertSlave({ ...slave, connection_xml: xml, hosted_by: host.reference });
}

/** softwareInstanceBang: the whole tree is re-processed. */
export async function bangInstance(tx: Tx, computer: string, partition: string): Promise<void> {
  const row = await requirePartition(tx, computer, partition);
  if (row.slap_state !== 'busy') throw notFound(`partition ${partition} is not allocated`);
  const rootTitle = row.requested_by || row.partition_reference || '';
  const root = await tx.findInstance(rootTitle, '');
  const tree = [...(root ? [root] : []), ...(await tx.listChildren(rootTitle))];
  for (const p of tree) await tx.updatePartition(p.computer_reference, p.reference, { timestamp: nextTimestamp(p.timestamp) });
}

export async function renameInstance(tx: Tx, computer: string, partition: string, newName: string): Promise<void> {
  const row = await requirePartition(tx, computer, partition);
  if (row.slap_state !== 'busy' || !row.partition_reference) throw notFound(`partition ${partition} is not allocated`);
  if (await tx.findInstance(newName, row.requested_by)) throw new MasterError(409, `an instance ${newName} already exists`);
  // A longer name is written into every child's answer too: each computer touched stays servable.
  const computers = new Set([computer]);
  if (row.requested_by === '') {
    for (const child of await tx.listChildren(row.partition_reference)) {
      await tx.updatePartition(child.computer_reference, child.reference, { requested_by: newName });
      computers.add(child.computer_reference);
    }
  }
  await tx.updatePartition(computer, partition, { partition_reference: newName });
  for (const c of computers) await checkServable(tx, c);
}

/**
 * destroyedComputerPartition: the node wiped the partition; free it. A root
 * with children first asks them to be destroyed and is freed on a later call.
 */
export async function destroyedPartition(tx: Tx, computer: string, partition: string): Promise<string> {
  const row = await tx.getPartition(checkId('computer id', computer), checkId('partition id', partition));
  // As the reference: 200 with this text (its Python repr of both ids), nothing changed.
  if (!row) return `Unknown partition '${partition}' on '${computer}'`;
  if (row.slap_state === 'busy' && row.requested_state !== 'destroyed') {
    throw badRequest(`partition ${partition} is not requested destroyed`);
  }
  const children = row.requested_by === '' && row.partition_reference ? await tx.listChildren(row.partition_reference) : [];
  if (children.length > 0) {
    for (const child of children) {
      if (child.requested_state !== 'destroyed') {
        await tx.updatePartition(child.computer_reference, child.reference, { requested_state: 'destroyed', timestamp: nextTimestamp(child.timestamp) });
      }
    }
    return `Not destroying yet because this partition has child partitions: ${children.map((c) => c.partition_reference).join(', ')}`;
  }
  // What only this instance requested is no longer requested by anyone (related-ops.ts).
  await forgetRelated(tx, row);
  await tx.updatePartition(computer, partition, {
    slap_state: 'free', software_release: null, xml: null, connection_xml: null, slave_instance_list: null,
    software_type: null, partition_reference: null, requested_by: '', requested_state: 'started',
  });
  // The instance is gone: its certificate no longer authenticates anyone.
  await tx.deleteCertificate(computer, partition);
  return 'OK';
}

/** getHostingSubscriptionIpList: every address of the partition's tree. */
export async function treeIpList(tx: Tx, computer: string, partition: string): Promise<Array<[string, string]>> {
  const row = await requirePartition(tx, computer, partition);
  const rootTitle = row.requested_by || row.partition_reference || '';
  const root = await tx.findInstance(rootTitle, '');
  const tree = row.slap_state === 'busy' ? [...(root ? [root] : []), ...(await tx.listChildren(rootTitle))] : [row];
  const out: Array<[string, string]> = [];
  for (const p of tree) for (const n of await tx.listNetwork(p.computer_reference, p.reference)) out.push([n.reference, n.address]);
  return out;
}
