// Telling the master that a partition, or the computer, needs attention
// (slapgrid.md §6.2, §7.3, §7.4). A partition bangs with its own certificate
// (`<certificate_repository_path>/<id>.crt/.key`) when the node has one, as
// the reference; otherwise with the computer's (our master lets a computer
// bang its own partitions).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { SlaposConfig } from '../config/load.js';
import { requireKeys } from '../config/load.js';
import { SlapClient, tlsFromFiles } from '../slap/client.js';

export type PartitionBang = (partitionId: string, message: string) => Promise<void>;

/** A client for the partition: its certificate when present, else the computer's. */
export function partitionClient(config: SlaposConfig, partitionId: string): SlapClient {
  const slapos = requireKeys(config, 'slapos', ['master_url']);
  const repo = slapos.certificate_repository_path;
  const cert = repo ? path.join(repo, `${partitionId}.crt`) : undefined;
  const key = repo ? path.join(repo, `${partitionId}.key`) : undefined;
  const own = cert !== undefined && key !== undefined && existsSync(cert) && existsSync(key);
  const tls = own
    ? { cert: readFileSync(cert), key: readFileSync(key), ...(slapos.master_ca_file ? { ca: readFileSync(slapos.master_ca_file) } : {}) }
    : tlsFromFiles(slapos);
  return new SlapClient(slapos.master_url, tls ? { tls } : {});
}

/** softwareInstanceBang for any partition of this computer, from slapos.cfg. */
export function partitionBanger(config: SlaposConfig): PartitionBang {
  const { computer_id } = requireKeys(config, 'slapos', ['computer_id']);
  return async (partitionId, message) => {
    const client = partitionClient(config, partitionId);
    try {
      await client.softwareInstanceBang(computer_id, partitionId, message);
    } finally {
      await client.close();
    }
  };
}

/** `slapos node bang -m MESSAGE`: computerBang with the computer's certificate. */
export async function computerBang(config: SlaposConfig, message: string): Promise<void> {
  const slapos = requireKeys(config, 'slapos', ['master_url', 'computer_id']);
  const tls = tlsFromFiles(slapos);
  const client = new SlapClient(slapos.master_url, tls ? { tls } : {});
  try {
    await client.computerBang(slapos.computer_id, message);
  } finally {
    await client.close();
  }
}
