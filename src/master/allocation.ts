// Pure decisions of a request (no I/O): scope, target state, whether the
// node must re-process (timestamp bump), shared-instance list changes.
import { dumps } from '../slap/marshal-encode.js';
import { isRecord, type PyRecord, type PyValue } from '../slap/pyvalue.js';
import type { PartitionRow } from './store.js';

export type RequestedState = 'started' | 'stopped' | 'destroyed';

/** Titles are unique per tree: a partition's request is scoped to its root's title. */
export function scopeOf(requester: PartitionRow | undefined): string {
  if (!requester) return '';
  return requester.requested_by || requester.partition_reference || '';
}

/** None keeps the stored state; an existing child follows a root that is not started. */
export function targetState(
  asked: RequestedState | null,
  existing: PartitionRow | undefined,
  root: PartitionRow | undefined,
): string {
  let state: string = asked ?? existing?.requested_state ?? 'started';
  if (existing && root && existing.requested_by !== '' && root.requested_state !== 'started') state = root.requested_state;
  return state;
}

export interface Wanted {
  software_release: string;
  software_type: string;
  xml: string;
  requested_state: string;
}

/** The node re-processes a partition only when its timestamp changes. */
export function needsBump(row: PartitionRow, wanted: Wanted): boolean {
  return (
    row.timestamp === null ||
    row.slap_state !== 'busy' ||
    row.software_release !== wanted.software_release ||
    row.software_type !== wanted.software_type ||
    row.xml !== wanted.xml ||
    row.requested_state !== wanted.requested_state
  );
}

/** Host of a shared instance: pinned by instance_guid, else first same-software (and type) partition. */
export function chooseHost(
  partitions: PartitionRow[],
  url: string,
  softwareType: string,
  instanceGuid: string | null,
): PartitionRow | undefined {
  const busy = partitions.filter((p) => p.slap_state === 'busy');
  if (instanceGuid) return busy.find((p) => instanceGuid === `${p.computer_reference}-${p.reference}` || instanceGuid === p.reference);
  return busy.find((p) => p.software_release === url && (softwareType === '' || p.software_type === softwareType));
}

/** The host's new slave_instance_list (marshalled), or undefined when nothing changes. */
export function updateSlaveList(
  current: PyValue[],
  slaveReference: string,
  softwareType: string,
  params: PyRecord,
  destroyed: boolean,
  previousMarshalled: string | null,
): string | undefined {
  const list = current.filter((entry) => !(isRecord(entry) && entry.slave_reference === slaveReference));
  if (!destroyed) {
    list.push({ slave_title: slaveReference, slap_software_type: softwareType, slave_reference: slaveReference, ...params });
  }
  const next = dumps(list);
  const before = previousMarshalled ?? dumps([]);
  return next === before ? undefined : next;
}
