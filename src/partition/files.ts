// Every file the node keeps in a partition directory, in one place
// (slapgrid.md §4.10). Paths only; reading and writing is in state.ts.
import path from 'node:path';

export interface PartitionFiles {
  dir: string;
  /** The node's own directory: logs and state (root-owned, group = partition). */
  slapgrid: string;
  logDir: string;
  instanceLog: string;
  /** Backoff and last-run state (ours, JSON). */
  state: string;
  /** The last master timestamp applied with success; its mtime is the last success. */
  timestamp: string;
  /** str(error) of the last failed processing (the reference's name). */
  errorLog: string;
  softwareRelease: string;
  buildoutCfg: string;
  /** The instance's configuration as JSON (ours; docs/instance.md). */
  configuration: string;
  /** Connection parameters published by the instance (docs/instance.md). */
  connection: string;
  /** Written by slapos node format. */
  resource: string;
  etcRun: string;
  etcService: string;
  /** The reference's transaction file of requested children (§4.8). */
  transaction: string;
}

export function partitionFiles(instanceRoot: string, id: string): PartitionFiles {
  const dir = path.join(instanceRoot, id);
  const slapgrid = path.join(dir, '.slapgrid');
  const logDir = path.join(slapgrid, 'log');
  return {
    dir,
    slapgrid,
    logDir,
    instanceLog: path.join(logDir, 'instance.log'),
    state: path.join(slapgrid, 'state.json'),
    timestamp: path.join(dir, '.timestamp'),
    errorLog: path.join(dir, `.slapgrid-${id}-error.log`),
    softwareRelease: path.join(dir, 'software_release'),
    buildoutCfg: path.join(dir, 'buildout.cfg'),
    configuration: path.join(dir, '.slapos-instance.json'),
    connection: path.join(dir, '.slapos-connection.json'),
    resource: path.join(dir, '.slapos-resource'),
    etcRun: path.join(dir, 'etc', 'run'),
    etcService: path.join(dir, 'etc', 'service'),
    transaction: path.join(dir, `.slapos-request-transaction-${id}`),
  };
}

/** Rotation threshold of instance.log (the reference's 20 MiB). */
export const INSTANCE_LOG_MAX_BYTES = 20 * 1024 * 1024;
