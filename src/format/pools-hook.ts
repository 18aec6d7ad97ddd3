// Format's part of the partition pools (docs/managers.md): after the apply
// steps, each partition gets its block device and routable IPv4 from
// [slapformat] partition_block_device_list / partition_routable_ipv4_list,
// and the report to the master lists the address in the partition's
// address_list (so the instance sees it in ip_list). Without pools this
// returns nothing: the planned report is sent unchanged.
import { statSync } from 'node:fs';
import path from 'node:path';
import type { SlaposConfig } from '../config/load.js';
import type { Logger } from '../util/log.js';
import { marshalComputer, type Dict } from './computer-xml.js';
import type { FormatSettings } from './settings.js';

/** The computer dict as reported, with each partition's pool address and device (pure). */
export function withPools(computer: Dict, pools: { ipv4: Record<string, string>; blockDevice: Record<string, string> }): Dict {
  const list = Array.isArray(computer.partition_list) ? (computer.partition_list as Dict[]) : [];
  return {
    ...computer,
    partition_list: list.map((p) => {
      const address = pools.ipv4[String(p.reference)];
      const device = pools.blockDevice[String(p.reference)];
      const addresses = Array.isArray(p.address_list) ? p.address_list : [];
      return {
        ...p,
        address_list: address ? [...addresses, { addr: address, netmask: '255.255.255.255' }] : addresses,
        external_storage_list: device ? [device] : p.external_storage_list ?? [],
      };
    }),
  };
}

/** The report's XML when pools change it; undefined without pools (the plan's computer is reported as it is). */
export async function formatPools(config: SlaposConfig, settings: FormatSettings, plan: { computer: Dict }, log: Logger): Promise<string | undefined> {
  const f = config.slapformat;
  if (f.partition_block_device_list.length === 0 && f.partition_routable_ipv4_list.length === 0) return undefined;
  const [{ managerSettings }, { applyPools }] = await Promise.all([import('../managers/settings.js'), import('../managers/pools.js')]);
  const ms = managerSettings(config, (m) => log.warn(m));
  const partitions = Array.from({ length: settings.partitionAmount }, (_, i) => {
    const id = `${settings.partitionBaseName}${i}`;
    return { id, uid: statSync(path.join(settings.instanceRoot, id)).uid };
  });
  const pools = await applyPools(ms, partitions, ms.ipv4Interface ? { interfaceName: ms.ipv4Interface } : undefined, log);
  const computer = withPools(plan.computer, pools);
  return marshalComputer(computer).compact;
}
