// What the instance loop needs from the master, and where the SLAP client is
// plugged in. The loop is written against this interface only.
import { requireKeys, type SlaposConfig } from '../config/load.js';
import { slapClientFromConfig } from '../slap/connect.js';
import { MasterUnreachableError, SlapHttpError } from '../slap/errors.js';
import type { ComputerPartition } from '../slap/shapes.js';

export interface InstanceMasterLink {
  /** getFullComputerInformation → the partitions, in the master's order. */
  partitions(): Promise<ComputerPartition[]>;
  certificate(partitionId: string): Promise<{ certificate: string; key: string }>;
  started(partitionId: string): Promise<void>;
  stopped(partitionId: string): Promise<void>;
  error(partitionId: string, message: string): Promise<void>;
  /** setComputerPartitionConnectionXml (per slave with slaveReference). */
  connection(partitionId: string, parameters: Record<string, string>, slaveReference?: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Errors after which the reference goes offline (§4.1): the master cannot be
 * reached, or answers 401/403/5xx (a 404 or 400 is an answer about this call).
 */
export function isMasterDown(error: unknown): boolean {
  if (error instanceof MasterUnreachableError) return true;
  return error instanceof SlapHttpError && (error.status === 401 || error.status === 403 || error.status >= 500);
}

export function connectInstanceMaster(config: SlaposConfig): InstanceMasterLink {
  const { computer_id: computerId } = requireKeys(config, 'slapos', ['computer_id', 'master_url']);
  const client = slapClientFromConfig(config);
  return {
    partitions: async () => (await client.getFullComputerInformation(computerId)).partitions,
    certificate: (id) => client.getComputerPartitionCertificate(computerId, id),
    started: (id) => client.startedComputerPartition(computerId, id),
    stopped: (id) => client.stoppedComputerPartition(computerId, id),
    error: (id, message) => client.softwareInstanceError(computerId, id, message),
    connection: (id, parameters, slave) => client.setComputerPartitionConnectionXml(computerId, id, parameters, slave),
    close: () => client.close(),
  };
}
