// What the loop needs to decide about a partition, without the full decoded
// document; and a cache of it keyed by the hash of the master's answer. An
// unchanged answer (the common case: nothing to do) is then not decoded at
// all: decoding 300 partitions' xml_marshaller document costs far more than
// deciding about them (docs/instance.md, benchmark).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { partitionFingerprint } from '../partition/backoff.js';
import { writeFileAtomic } from '../partition/state.js';
import type { ComputerPartition } from '../slap/shapes.js';
import { toJson } from './configuration.js';

export interface PartitionDigest {
  id: string;
  requestedState: string;
  url: string | null;
  timestamp: string | null;
  fingerprint: string;
  softwareType: string;
}

/** The master's answer: its hash now, the decoded partitions when asked. */
export interface FetchedPartitions {
  hash: string;
  decode(): ComputerPartition[];
}

export function digestPartition(p: ComputerPartition): PartitionDigest {
  const params = p.parameters ?? {};
  const url = p.softwareRelease?.url ?? null;
  const timestamp = params.timestamp === undefined || params.timestamp === null ? null : String(toJson(params.timestamp));
  const type = params.slap_software_type;
  return {
    id: p.partitionId,
    requestedState: p.requestedState,
    url,
    timestamp,
    fingerprint: partitionFingerprint({ timestamp, softwareUrl: url, requestedState: p.requestedState, parameters: toJson(params) }),
    softwareType: typeof type === 'string' && type !== '' ? type : '(not ready)',
  };
}

export const hashBody = (body: string): string => createHash('sha256').update(body).digest('hex');

const CACHE_VERSION = 1;

export function readDigestCache(file: string, hash: string): PartitionDigest[] | undefined {
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as { version: number; hash: string; partitions: PartitionDigest[] };
    return data.version === CACHE_VERSION && data.hash === hash && Array.isArray(data.partitions) ? data.partitions : undefined;
  } catch {
    return undefined;
  }
}

export function writeDigestCache(file: string, hash: string, partitions: PartitionDigest[]): void {
  writeFileAtomic(file, JSON.stringify({ version: CACHE_VERSION, hash, partitions }), 0o600);
}
