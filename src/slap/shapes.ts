// Typed views of the four slapos.slap.slap classes that travel on the wire,
// and builders of their marshalled form (init args + __dict__ as the reference).
import { isRecord, PyObject, PyTuple, type PyRecord, type PyValue } from './pyvalue.js';

const MODULE = 'slapos.slap.slap';

export interface SoftwareRelease {
  url: string;
  computerGuid: string;
  /** available | destroyed (absent inside a partition's software release document). */
  requestedState: string | null;
}

export interface ComputerPartition {
  computerId: string;
  partitionId: string;
  requestedState: string;
  needModification: boolean;
  instanceGuid: string | null;
  softwareRelease: SoftwareRelease | null;
  /** Absent (null) on a free partition. */
  parameters: PyRecord | null;
  connectionParameters: PyRecord | null;
  /** The instance's SLA/filter dict (fw_* keys of [firewall]), when the master sends one. */
  filter?: PyRecord | null;
}

export interface Computer {
  computerId: string;
  softwareReleases: SoftwareRelease[];
  partitions: ComputerPartition[];
}

export interface SoftwareInstance {
  computerId: string | null;
  partitionId: string | null;
  softwareReleaseUrl: string | null;
  softwareType: string | null;
  /** Absent for a shared instance. */
  instanceGuid: string | null;
  requestedState: string | null;
  parameters: PyRecord;
  connectionParameters: PyRecord;
  ipList: Array<[string, string]>;
}

// ---- builders (master side) ----

export function softwareReleaseObject(url: string, computer: string, requestedState?: string): PyObject {
  const state: PyRecord = { _computer_guid: computer, _software_instance_list: [], _software_release: url };
  if (requestedState !== undefined) state._requested_state = requestedState;
  return new PyObject(MODULE, 'SoftwareRelease', [url, computer], state);
}

export function computerPartitionObject(computer: string, partition: string, state: PyRecord): PyObject {
  return new PyObject(MODULE, 'ComputerPartition', [computer, partition, null], {
    _computer_id: computer, _partition_id: partition, _request_dict: null, ...state,
  });
}

export function computerObject(computer: string, softwareReleases: PyObject[], partitions: PyObject[]): PyObject {
  return new PyObject(MODULE, 'Computer', [computer], {
    _computer_id: computer, _computer_partition_list: partitions, _software_release_list: softwareReleases,
  });
}

export function softwareInstanceObject(state: PyRecord): PyObject {
  return new PyObject(MODULE, 'SoftwareInstance', [], state);
}

export function ipTuples(list: Array<[string, string]>): PyTuple[] {
  return list.map(([iface, addr]) => new PyTuple([iface, addr]));
}

// ---- readers (client side) ----

export class ShapeError extends Error {
  override name = 'ShapeError';
}

function expectObject(value: PyValue, className: string): PyObject {
  if (!(value instanceof PyObject) || value.className !== className) {
    throw new ShapeError(`expected a marshalled ${className}`);
  }
  return value;
}

const str = (value: PyValue | undefined): string | null => (typeof value === 'string' ? value : null);
const rec = (value: PyValue | undefined): PyRecord | null => (isRecord(value) ? value : null);

export function readSoftwareRelease(value: PyValue): SoftwareRelease {
  const obj = expectObject(value, 'SoftwareRelease');
  return {
    url: str(obj.state._software_release) ?? str(obj.initArgs[0]) ?? '',
    computerGuid: str(obj.state._computer_guid) ?? str(obj.initArgs[1]) ?? '',
    requestedState: str(obj.state._requested_state),
  };
}

export function readComputerPartition(value: PyValue): ComputerPartition {
  const obj = expectObject(value, 'ComputerPartition');
  const s = obj.state;
  const doc = s._software_release_document;
  return {
    computerId: str(s._computer_id) ?? str(obj.initArgs[0]) ?? '',
    partitionId: str(s._partition_id) ?? str(obj.initArgs[1]) ?? '',
    requestedState: str(s._requested_state) ?? 'destroyed',
    needModification: s._need_modification === 1 || s._need_modification === true,
    instanceGuid: str(s._instance_guid),
    softwareRelease: doc instanceof PyObject ? readSoftwareRelease(doc) : null,
    parameters: rec(s._parameter_dict),
    connectionParameters: rec(s._connection_dict),
    ...(s._filter_dict !== undefined ? { filter: rec(s._filter_dict) } : {}),
  };
}

export function readComputer(value: PyValue): Computer {
  const obj = expectObject(value, 'Computer');
  const srs = obj.state._software_release_list;
  const parts = obj.state._computer_partition_list;
  return {
    computerId: str(obj.state._computer_id) ?? str(obj.initArgs[0]) ?? '',
    softwareReleases: Array.isArray(srs) ? srs.map(readSoftwareRelease) : [],
    partitions: Array.isArray(parts) ? parts.map(readComputerPartition) : [],
  };
}

/**
 * A request's answer: a SoftwareInstance, or (a request forwarded to another
 * master, multimaster) a ComputerPartition of that master carrying the same keys.
 */
export function readSoftwareInstance(value: PyValue): SoftwareInstance {
  const forwarded = value instanceof PyObject && value.className === 'ComputerPartition';
  const s = expectObject(value, forwarded ? 'ComputerPartition' : 'SoftwareInstance').state;
  const ips = Array.isArray(s.ip_list) ? s.ip_list : [];
  return {
    computerId: str(s.slap_computer_id) ?? (forwarded ? str(s._computer_id) : null),
    partitionId: str(s.slap_computer_partition_id) ?? (forwarded ? str(s._partition_id) : null),
    softwareReleaseUrl: str(s.slap_software_release_url),
    softwareType: str(s.slap_software_type),
    instanceGuid: str(s._instance_guid),
    requestedState: str(s._requested_state),
    parameters: rec(s._parameter_dict) ?? {},
    connectionParameters: rec(s._connection_dict) ?? {},
    ipList: ips.flatMap((ip) =>
      ip instanceof PyTuple && typeof ip.items[0] === 'string' && typeof ip.items[1] === 'string'
        ? [[ip.items[0], ip.items[1]] as [string, string]]
        : [],
    ),
  };
}
