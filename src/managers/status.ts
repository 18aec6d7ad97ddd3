// What `slapos node status` shows of the managers: which are on, and what
// each partition holds or had refused (from the root-owned state files).
import type { SlaposConfig } from '../config/load.js';
import { formatManagerStatus } from './index.js';
import { readPools, type Pools } from './pools.js';
import { managerSettings } from './settings.js';
import { allManagerStates, type PartitionManagerState } from './state.js';

export interface ManagersStatus {
  enabled: string[];
  firewall: boolean;
  partitions: PartitionManagerState[];
  pools: Pools;
}

export function readManagersStatus(config: SlaposConfig): ManagersStatus {
  const s = managerSettings(config);
  return { enabled: s.enabled, firewall: s.firewall !== undefined, partitions: allManagerStates(s.instanceRoot), pools: readPools(s.instanceRoot) };
}

export function formatManagersStatus(status: ManagersStatus): string {
  const pools = Object.entries(status.pools.blockDevice).map(([id, d]) => `${id}=${d}`)
    .concat(Object.entries(status.pools.ipv4).map(([id, a]) => `${id}=${a}`));
  return formatManagerStatus(status.enabled, status.firewall, status.partitions) + (pools.length > 0 ? `\npools: ${pools.join(', ')}` : '');
}
