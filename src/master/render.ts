// Rows → the marshalled objects the reference's proxy answers (slap_tool.py
// partitiondict2partition and the request replies), key for key.
import { instanceXmlToDict } from '../slap/instance-xml.js';
import { loads } from '../slap/marshal-decode.js';
import { pyFloatRepr, type PyObject, type PyRecord, type PyValue } from '../slap/pyvalue.js';
import {
  computerPartitionObject, ipTuples, softwareInstanceObject, softwareReleaseObject,
} from '../slap/shapes.js';
import type { NetworkRow, PartitionRow, SlaveRow } from './store.js';

export const instanceGuid = (p: Pick<PartitionRow, 'computer_reference' | 'reference'>): string =>
  `${p.computer_reference}-${p.reference}`;

export const timestampText = (ts: number | null): string => (ts === null ? 'None' : pyFloatRepr(ts));

export const ipList = (network: NetworkRow[]): Array<[string, string]> => network.map((n) => [n.reference, n.address]);

export function slaveList(p: PartitionRow): PyValue[] {
  if (!p.slave_instance_list) return [];
  const value = loads(p.slave_instance_list);
  return Array.isArray(value) ? value : [];
}

/** The ComputerPartition the node sees (getFullComputerInformation, registerComputerPartition). */
export function partitionObject(p: PartitionRow, network: NetworkRow[]): PyObject {
  const state: PyRecord = {
    _instance_guid: instanceGuid(p),
    _need_modification: 0,
    _requested_state: 'destroyed',
    _software_release_document: null,
  };
  if (p.software_release) {
    const params: PyRecord = { ...instanceXmlToDict(p.xml) };
    Object.assign(params, {
      ip_list: ipTuples(ipList(network)),
      full_address_list: [],
      slap_software_type: p.software_type,
      instance_title: p.partition_reference,
      root_instance_title: p.requested_by || p.partition_reference,
      slap_computer_id: p.computer_reference,
      slap_computer_partition_id: p.reference,
      slap_software_release_url: p.software_release,
      slave_instance_list: slaveList(p),
      timestamp: timestampText(p.timestamp),
    });
    Object.assign(state, {
      _need_modification: 1,
      _requested_state: p.requested_state,
      _parameter_dict: params,
      _connection_dict: instanceXmlToDict(p.connection_xml),
      _software_release_document: softwareReleaseObject(p.software_release, p.computer_reference),
    });
  }
  return computerPartitionObject(p.computer_reference, p.reference, state);
}

/** Reply to a request of a regular instance. */
export function instanceReply(p: PartitionRow, network: NetworkRow[]): PyObject {
  return softwareInstanceObject({
    _connection_dict: instanceXmlToDict(p.connection_xml),
    _instance_guid: instanceGuid(p),
    _parameter_dict: { ...instanceXmlToDict(p.xml), timestamp: timestampText(p.timestamp) },
    _requested_state: p.requested_state,
    connection_xml: p.connection_xml,
    ip_list: ipTuples(ipList(network)),
    slap_computer_id: p.computer_reference,
    slap_computer_partition_id: p.reference,
    slap_server_url: 'slap_server_url',
    slap_software_release_url: p.software_release,
    slap_software_type: p.software_type,
  });
}

/** Reply to a request of a shared instance: the host's location, the slave's own data. */
export function slaveReply(host: PartitionRow, slave: SlaveRow, paramsXml: string, network: NetworkRow[]): PyObject {
  return softwareInstanceObject({
    _connection_dict: instanceXmlToDict(slave.connection_xml),
    _parameter_dict: instanceXmlToDict(paramsXml),
    ip_list: ipTuples(ipList(network)),
    slap_computer_id: host.computer_reference,
    slap_computer_partition_id: host.reference,
    slap_server_url: 'slap_server_url',
    slap_software_release_url: host.software_release,
    slap_software_type: host.software_type,
  });
}
