// Everything format reads from slapos.cfg and the command line, checked once,
// before anything is observed or changed.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, requireKeys, type SlaposConfig } from '../config/load.js';
import type { SlapformatSection } from '../config/schema.js';
import type { CgroupLimits } from '../cgroup/limits.js';
import { parseCidr4, type Network4 } from './addressing.js';

export interface FormatOptions {
  dryRun?: boolean;
  json?: boolean;
  now?: boolean;
  computerXml?: string;
  computerJson?: string;
  alterUser?: string;
  alterNetwork?: string;
  /** Remove surplus partitions even when the master cannot say whether they are busy. */
  allowOfflineShrink?: boolean;
}

export interface FormatSettings {
  configFile: string;
  computerId: string;
  masterUrl: string;
  keyFile?: string;
  certFile?: string;
  softwareRoot: string;
  instanceRoot: string;
  instanceStorageHome?: string;
  certificateRepositoryPath?: string;
  partitionAmount: number;
  interfaceName?: string;
  ipv6Interface?: string;
  ipv4LocalNetworkText?: string;
  ipv4LocalNetwork?: Network4;
  partitionHasIpv6Range: boolean;
  prefixShift: number;
  createTap: boolean;
  tapBaseName: string;
  /** undefined: decided from interface_name's kind (a bridge → "bridge"). */
  tapMode?: 'bridge' | 'route';
  tapIpv6: boolean;
  /** Reported as configured; taps get no IPv4 from it (not supported yet), recorded ones are kept. */
  tapGatewayInterface: string;
  createTun: boolean;
  tunBaseName: string;
  tunIpv6: boolean;
  alterUser: boolean;
  alterNetwork: boolean;
  softwareUser: string;
  partitionBaseName: string;
  userBaseName: string;
  computerXml: string;
  computerJson?: string;
  cgroupParent: string;
  limits: CgroupLimits;
  randomDelay: number;
  dryRun: boolean;
}

function cliBool(value: string | undefined, name: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (/^true$/i.test(value)) return true;
  if (/^false$/i.test(value)) return false;
  throw new ConfigError(`--${name} takes true or false, got ${JSON.stringify(value)}`, '(command line)');
}

/**
 * The reference merges [slapformat] and [slapos] into one namespace where
 * [slapos] wins (slapformat.md §2.1). We read [slapformat]; a [slapformat] key
 * found in [slapos] (config.slapformatOverrides) still wins, as in the
 * reference, so an existing node's slapos.cfg keeps its meaning, and one
 * warning names them all.
 */
function mergedSlapformat(config: SlaposConfig, warn: (message: string) => void): SlapformatSection {
  const keys = Object.keys(config.slapformatOverrides);
  if (keys.length > 0) {
    warn(`${config.file}: [slapos] ${keys.join(', ')} ${keys.length === 1 ? 'overrides' : 'override'} [slapformat] (as slapos.core does); move ${keys.length === 1 ? 'it' : 'them'} to [slapformat]`);
  }
  return { ...config.slapformat, ...config.slapformatOverrides };
}

export function resolveSettings(config: SlaposConfig, options: FormatOptions, warn: (message: string) => void): FormatSettings {
  const slapos = requireKeys(config, 'slapos', ['computer_id', 'master_url', 'software_root', 'instance_root']);
  const f = mergedSlapformat(config, warn);
  const computerXml = options.computerXml ?? f.computer_xml;
  if (computerXml === undefined) throw new ConfigError('missing required key [slapformat] computer_xml', config.file, 'slapformat', 'computer_xml');
  if (f.partition_amount === undefined) {
    throw new ConfigError('missing required key [slapformat] partition_amount', config.file, 'slapformat', 'partition_amount');
  }
  const alterNetwork = cliBool(options.alterNetwork, 'alter-network') ?? f.alter_network;
  const alterUser = cliBool(options.alterUser, 'alter-user') ?? f.alter_user;
  for (const key of ['key_file', 'cert_file', 'master_ca_file'] as const) {
    const file = slapos[key];
    if (file !== undefined && !existsSync(file)) throw new ConfigError(`[slapos] ${key}: ${file} does not exist`, config.file, 'slapos', key);
  }
  if (alterNetwork) {
    if (f.interface_name === undefined) {
      throw new ConfigError('missing [slapformat] interface_name (needed with alter_network = true)', config.file, 'slapformat', 'interface_name');
    }
    if (f.ipv4_local_network === undefined) {
      throw new ConfigError('missing [slapformat] ipv4_local_network (needed with alter_network = true)', config.file, 'slapformat', 'ipv4_local_network');
    }
  }
  if (f.partition_has_ipv6_range || f.tap_ipv6 || f.tun_ipv6) {
    // 2^shift >= 4 x amount: ranges of kind 1..3 never collide (as the reference checks).
    if (2 ** f.ipv6_prefixshift < 4 * f.partition_amount) {
      throw new ConfigError(
        `[slapformat] ipv6_prefixshift = ${f.ipv6_prefixshift} is too small for ${f.partition_amount} partitions (needs 2^shift >= 4 x partition_amount)`,
        config.file, 'slapformat', 'ipv6_prefixshift',
      );
    }
  }
  if (f.tap_gateway_interface !== '') {
    warn(`${config.file}: [slapformat] tap_gateway_interface = ${f.tap_gateway_interface} is not supported yet: taps get no IPv4 from that interface's subnet (their ipv4_* fields stay empty)`);
  }
  const ipv4Text = f.ipv4_local_network === undefined ? undefined : String(f.ipv4_local_network);
  return {
    configFile: config.file,
    computerId: slapos.computer_id,
    masterUrl: slapos.master_url,
    ...(slapos.key_file ? { keyFile: slapos.key_file } : {}),
    ...(slapos.cert_file ? { certFile: slapos.cert_file } : {}),
    softwareRoot: slapos.software_root,
    instanceRoot: slapos.instance_root,
    ...(slapos.instance_storage_home ? { instanceStorageHome: slapos.instance_storage_home } : {}),
    ...(slapos.certificate_repository_path ? { certificateRepositoryPath: slapos.certificate_repository_path } : {}),
    partitionAmount: f.partition_amount,
    ...(f.interface_name ? { interfaceName: f.interface_name } : {}),
    ...(f.ipv6_interface || f.interface_name ? { ipv6Interface: f.ipv6_interface ?? f.interface_name } : {}),
    ...(ipv4Text ? { ipv4LocalNetworkText: ipv4Text, ipv4LocalNetwork: parseCidr4(ipv4Text) } : {}),
    partitionHasIpv6Range: f.partition_has_ipv6_range,
    prefixShift: f.ipv6_prefixshift,
    createTap: f.create_tap,
    tapBaseName: f.tap_base_name,
    ...(f.tap_mode ? { tapMode: f.tap_mode } : {}),
    tapIpv6: f.tap_ipv6,
    tapGatewayInterface: f.tap_gateway_interface,
    createTun: f.create_tun,
    tunBaseName: f.tun_base_name,
    tunIpv6: f.tun_ipv6,
    alterUser,
    alterNetwork,
    softwareUser: f.software_user,
    partitionBaseName: f.partition_base_name,
    userBaseName: f.user_base_name,
    computerXml: path.resolve(computerXml),
    ...(options.computerJson ?? f.computer_json ? { computerJson: path.resolve((options.computerJson ?? f.computer_json) as string) } : {}),
    cgroupParent: f.cgroup_parent,
    limits: {
      ...(f.partition_cpu_weight !== undefined ? { cpuWeight: f.partition_cpu_weight } : {}),
      ...(f.partition_cpu_quota_percent !== undefined ? { cpuQuotaPercent: f.partition_cpu_quota_percent } : {}),
      ...(f.partition_memory_max !== undefined ? { memoryMax: f.partition_memory_max } : {}),
      ...(f.partition_pids_max !== undefined ? { pidsMax: f.partition_pids_max } : {}),
    },
    randomDelay: f.random_delay,
    dryRun: options.dryRun === true,
  };
}
