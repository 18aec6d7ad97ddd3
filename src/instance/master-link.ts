// What the instance loop needs from the master, and where the SLAP client is
// plugged in. The loop is written against this interface only.
import { requireKeys, type SlaposConfig } from '../config/load.js';
import { slapClientFromConfig } from '../slap/connect.js';
import { MasterUnreachableError, SlapHttpError } from '../slap/errors.js';
import { loads } from '../slap/marshal-decode.js';
import { SlapProtocolError } from '../slap/errors.js';
import { readComputer } from '../slap/shapes.js';
import { hashBody, type FetchedPartitions } from './digest.js';

export interface InstanceMasterLink {
  /** getFullComputerInformation → the partitions, in the master's order (decoded on demand). */
  partitions(): Promise<FetchedPartitions>;
  certificate(partitionId: string): Promise<{ certificate: string; key: string }>;
  started(partitionId: string): Promise<void>;
  stopped(partitionId: string): Promise<void>;
  error(partitionId: string, message: string): Promise<void>;
  /** softwareInstanceBang: the master bumps the instance tree (promise anomaly). */
  bang(partitionId: string, message: string): Promise<void>;
  /** setComputerPartitionConnectionXml (per slave with slaveReference). */
  connection(partitionId: string, parameters: Record<string, string>, slaveReference?: string): Promise<void>;
  /** updateComputerPartitionRelatedInstanceList: the titles the partition's buildout requested. */
  related(partitionId: string, titles: string[]): Promise<void>;
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
    async partitions() {
      const body = await client.call('GET', 'getFullComputerInformation', { computer_id: computerId });
      let decoded: ReturnType<FetchedPartitions['decode']> | undefined;
      return {
        hash: hashBody(body),
        decode() {
          try {
            decoded ??= readComputer(loads(body)).partitions;
          } catch (error) {
            throw new SlapProtocolError('getFullComputerInformation', `answer is not a marshalled Computer: ${(error as Error).message}`);
          }
          return decoded;
        },
      };
    },
    certificate: (id) => client.getComputerPartitionCertificate(computerId, id),
    started: (id) => client.startedComputerPartition(computerId, id),
    stopped: (id) => client.stoppedComputerPartition(computerId, id),
    error: (id, message) => client.softwareInstanceError(computerId, id, message),
    bang: (id, message) => client.softwareInstanceBang(computerId, id, message),
    connection: (id, parameters, slave) => client.setComputerPartitionConnectionXml(computerId, id, parameters, slave),
    related: (id, titles) => client.updateComputerPartitionRelatedInstanceList(computerId, id, titles),
    close: () => client.close(),
  };
}
