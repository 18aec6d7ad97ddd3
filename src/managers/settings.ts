// The managers' configuration from slapos.cfg (managers.md §1): manager_list,
// [manager:<name>] sections, [firewall], power_user_list and the partition
// pools. A bad value is a ConfigError naming the key; an unknown manager
// aborts the command before it does anything, as the reference's import error.
import { existsSync } from 'node:fs';
import { ConfigError, type SlaposConfig } from '../config/load.js';
import { isIpv4, isIpv4Network } from './validate.js';

export const MANAGER_NAMES = ['cpuset', 'devperm', 'portredir', 'prerm', 'whitelistfirewall'] as const;
export type ManagerName = (typeof MANAGER_NAMES)[number];

export interface FirewallSettings {
  /** [firewall] authorized_sources: IPv4 addresses or networks. */
  authorizedSources: string[];
}

export interface ManagerSettings {
  instanceRoot: string;
  enabled: ManagerName[];
  powerUsers: ReadonlySet<string>;
  /** [manager:devperm] allowed-disk-for-vm; empty when absent (ours: nothing allowed unless listed). */
  allowedDisks: string[];
  /** Present when slapos.cfg has a [firewall] section (an empty one enables it, as the reference). */
  firewall: FirewallSettings | undefined;
  /** argv of nft ([firewall] nft_cmd, ours). */
  nftCommand: string[];
  blockDevices: string[];
  routableIpv4: string[];
  /** [slapformat] interface_name: where the routable IPv4 addresses are put (/32). */
  ipv4Interface: string | undefined;
  /** Milliseconds a managed nft or device step may take. */
  timeoutMs: number;
}

/** [firewall] keys of the reference that drive firewalld and have no meaning on nftables: accepted, ignored. */
export const FIREWALLD_KEYS = ['firewall_cmd', 'firewall_executable', 'dbus_executable', 'reload_config_cmd', 'log_file', 'dbus_log_file', 'testing'];

/** Items of every section whose name starts with "manager", keyed by name minus its first 8 characters (the reference's rule). */
function managerSections(config: SlaposConfig): Map<string, ReadonlyMap<string, string>> {
  const out = new Map<string, ReadonlyMap<string, string>>();
  for (const [name, values] of config.raw) if (name.startsWith('manager') && name.length > 8) out.set(name.slice(8), values);
  return out;
}

export function managerSettings(config: SlaposConfig, warn: (message: string) => void = () => {}): ManagerSettings {
  const file = config.file;
  const enabled: ManagerName[] = [];
  for (const name of config.slapos.manager_list) {
    if (!/^[A-Za-z_]+$/.test(name)) throw new ConfigError(`manager_list: Manager name "${name}" is not allowed! Must contain only letters and "_"`, file, 'slapos', 'manager_list');
    if (!(MANAGER_NAMES as readonly string[]).includes(name)) {
      throw new ConfigError(`manager_list: unknown manager "${name}" (known: ${MANAGER_NAMES.join(', ')})`, file, 'slapos', 'manager_list');
    }
    if (!enabled.includes(name as ManagerName)) enabled.push(name as ManagerName);
  }
  const sections = managerSections(config);
  const devperm = sections.get('devperm');
  const allowedDisks = (devperm?.get('allowed-disk-for-vm') ?? '').split('\n').map((l) => l.trim()).filter((l) => l !== '');
  for (const disk of allowedDisks) {
    if (!/^\/dev\/[A-Za-z0-9_./:-]+$/.test(disk) || disk.includes('..')) {
      throw new ConfigError(`allowed-disk-for-vm: ${JSON.stringify(disk)} is not a device path under /dev`, file, 'manager:devperm', 'allowed-disk-for-vm');
    }
  }
  const fwRaw = config.raw.get('firewall');
  let firewall: FirewallSettings | undefined;
  // Absolute when installed: a `nft` earlier on PATH (npm's node_modules/.bin has one) must not be run as root.
  let nftCommand = [existsSync('/usr/sbin/nft') ? '/usr/sbin/nft' : 'nft'];
  if (fwRaw) {
    const sources = (fwRaw.get('authorized_sources') ?? '').split(/\s+/).filter((s) => s !== '');
    for (const source of sources) {
      if (!isIpv4(source) && !isIpv4Network(source)) throw new ConfigError(`authorized_sources: ${JSON.stringify(source)} is not an IPv4 address or network`, file, 'firewall', 'authorized_sources');
    }
    firewall = { authorizedSources: sources };
    const cmd = fwRaw.get('nft_cmd');
    if (cmd !== undefined && cmd.trim() !== '') nftCommand = cmd.trim().split(/\s+/);
    const ignored = [...fwRaw.keys()].filter((k) => FIREWALLD_KEYS.includes(k));
    if (ignored.length > 0) warn(`${file}: [firewall] ${ignored.join(', ')}: firewalld keys, ignored (rules go through nftables, docs/managers.md)`);
    const unknown = [...fwRaw.keys()].filter((k) => !FIREWALLD_KEYS.includes(k) && k !== 'authorized_sources' && k !== 'nft_cmd');
    if (unknown.length > 0) warn(`${file}: unknown key [firewall] ${unknown.join(', ')}`);
  }
  const blockDevices = config.slapformat.partition_block_device_list;
  for (const device of blockDevices) {
    if (!/^\/dev\/[A-Za-z0-9_./:-]+$/.test(device) || device.includes('..')) {
      throw new ConfigError(`partition_block_device_list: ${JSON.stringify(device)} is not a device path under /dev`, file, 'slapformat', 'partition_block_device_list');
    }
  }
  const routableIpv4 = config.slapformat.partition_routable_ipv4_list;
  for (const address of routableIpv4) {
    if (!isIpv4(address)) throw new ConfigError(`partition_routable_ipv4_list: ${JSON.stringify(address)} is not an IPv4 address`, file, 'slapformat', 'partition_routable_ipv4_list');
  }
  if (new Set(routableIpv4).size !== routableIpv4.length) throw new ConfigError('partition_routable_ipv4_list: an address is listed twice', file, 'slapformat', 'partition_routable_ipv4_list');
  if (new Set(blockDevices).size !== blockDevices.length) throw new ConfigError('partition_block_device_list: a device is listed twice', file, 'slapformat', 'partition_block_device_list');
  return {
    instanceRoot: config.slapos.instance_root ?? '/srv/slapgrid',
    enabled, powerUsers: new Set(config.slapos.power_user_list), allowedDisks, firewall, nftCommand, blockDevices, routableIpv4,
    ipv4Interface: config.slapformat.interface_name, timeoutMs: 30_000,
  };
}

/** Anything to do at all (the instance pass skips every manager call otherwise). */
export function managersActive(s: ManagerSettings): boolean {
  return s.enabled.length > 0 || s.firewall !== undefined || s.blockDevices.length > 0 || s.routableIpv4.length > 0;
}
