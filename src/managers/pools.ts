// Block devices and routable IPv4 given to partitions from the operator's
// pools ([slapformat] partition_block_device_list, partition_routable_ipv4_list):
// format assigns (assignPool, pure) and applies them (device owner, address),
// destruction gives them back. Assignments are root's state
// (<instance_root>/var/managers/pools.json).
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { AF_INET, netlinkCode, Rtnl } from '../network/netlink.js';
import { parse4 } from '../network/address.js';
import { writeFileAtomic } from '../partition/state.js';
import type { Logger } from '../util/log.js';
import { assignPool } from './plans.js';
import type { ManagerSettings } from './settings.js';
import { stateDir } from './state.js';

export interface Pools {
  blockDevice: Record<string, string>;
  ipv4: Record<string, string>;
}

const poolsFile = (root: string) => path.join(stateDir(root), 'pools.json');

export function readPools(root: string): Pools {
  try {
    const parsed = JSON.parse(readFileSync(poolsFile(root), 'utf8')) as Partial<Pools>;
    return { blockDevice: parsed.blockDevice ?? {}, ipv4: parsed.ipv4 ?? {} };
  } catch {
    return { blockDevice: {}, ipv4: {} };
  }
}

function writePools(root: string, pools: Pools): void {
  mkdirSync(stateDir(root), { recursive: true, mode: 0o700 });
  writeFileAtomic(poolsFile(root), `${JSON.stringify(pools, null, 2)}\n`, 0o600);
}

export interface PoolPartition {
  id: string;
  uid: number;
}

/** Where a partition's routable IPv4 lives: a /32 on this interface (index from netlink). */
export interface Ipv4Target {
  interfaceName: string;
}

async function withRtnl<T>(fn: (rtnl: Rtnl) => Promise<T>): Promise<T> {
  const rtnl = new Rtnl();
  try {
    return await fn(rtnl);
  } finally {
    rtnl.close();
  }
}

async function setAddress(target: Ipv4Target, address: string, present: boolean): Promise<void> {
  await withRtnl(async (rtnl) => {
    const link = await rtnl.link(target.interfaceName);
    if (!link) throw new Error(`interface ${target.interfaceName} not found`);
    const ip = { family: AF_INET, value: parse4(address) } as const;
    try {
      if (present) await rtnl.addAddress(link.index, ip, 32);
      else await rtnl.delAddress(link.index, ip, 32);
    } catch (error) {
      const code = netlinkCode(error);
      if (present && code === 'EEXIST') return;
      if (!present && (code === 'EADDRNOTAVAIL' || code === 'ENOENT' || code === 'ESRCH')) return;
      throw error;
    }
  });
}

/**
 * Format's step: assign (keeping what partitions hold), then give each its
 * device (owner = partition user, group disk, 0660) and address (/32 on the
 * interface). Returns the assignments, for the report to the master.
 */
export async function applyPools(settings: ManagerSettings, partitions: readonly PoolPartition[], target: Ipv4Target | undefined, log: Logger): Promise<Pools> {
  const { ownDevice } = await import('./index.js');
  const root = settings.instanceRoot;
  const current = readPools(root);
  const ids = partitions.map((p) => p.id);
  const next: Pools = {
    blockDevice: assignPool(ids, settings.blockDevices, current.blockDevice),
    ipv4: target ? assignPool(ids, settings.routableIpv4, current.ipv4) : {},
  };
  // Taken back first: a resource removed from the pool (or from a removed partition).
  for (const [id, device] of Object.entries(current.blockDevice)) {
    if (next.blockDevice[id] !== device) {
      try { ownDevice(device, 0); } catch (error) { log.warn({ code: 'POOL_RELEASE_FAILED', device, was: id, err: error }, 'pool: device not taken back'); }
    }
  }
  for (const [id, address] of Object.entries(current.ipv4)) {
    if (next.ipv4[id] !== address && target) await setAddress(target, address, false).catch((error: Error) => log.warn({ code: 'POOL_RELEASE_FAILED', address, was: id, err: error }, 'pool: address not taken back'));
  }
  for (const p of partitions) {
    const device = next.blockDevice[p.id];
    if (device) ownDevice(device, p.uid);
    const address = next.ipv4[p.id];
    if (address && target) await setAddress(target, address, true);
  }
  writePools(root, next);
  if (settings.blockDevices.length > 0 || settings.routableIpv4.length > 0) {
    log.info({ block_devices: Object.keys(next.blockDevice).length, routable_ipv4: Object.keys(next.ipv4).length }, 'pools: given to partitions');
  }
  if (settings.routableIpv4.length > 0 && !target) log.warn('partition_routable_ipv4_list needs interface_name: no address given');
  return next;
}

/** Destruction: the partition's device goes back to root, its address is removed; both return to the pool. */
export async function releasePools(settings: ManagerSettings, id: string, log: Logger): Promise<void> {
  const target = settings.ipv4Interface ? { interfaceName: settings.ipv4Interface } : undefined;
  const root = settings.instanceRoot;
  const pools = readPools(root);
  const device = pools.blockDevice[id];
  const address = pools.ipv4[id];
  if (!device && !address) return;
  const { ownDevice } = await import('./index.js');
  if (device) {
    try { ownDevice(device, 0); } catch (error) { log.warn({ code: 'POOL_RELEASE_FAILED', partition: id, device, err: error }, 'pool: device not taken back'); }
    delete pools.blockDevice[id];
  }
  if (address) {
    if (target) await setAddress(target, address, false).catch((error: Error) => log.warn({ code: 'POOL_RELEASE_FAILED', partition: id, address, err: error }, 'pool: address not taken back'));
    delete pools.ipv4[id];
  }
  writePools(root, pools);
  log.info({ partition: id, ...(device ? { device } : {}), ...(address ? { address } : {}) }, 'pool: back in the pool');
}
