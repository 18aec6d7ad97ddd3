// The computer dict: what the state files hold, what .slapos-resource holds
// per partition, and what the master receives. Key names and value shapes are
// the reference's (slapformat.md §6.1, §6.3): they are an interface.
import { format4, format6, netmask6, rangeDict } from './addressing.js';
import type { Dict, MarshalValue } from './computer-xml.js';
import type { Observed } from './observe.js';
import { storedPartition, type NetworkModel } from './plan-network.js';
import type { FormatSettings } from './settings.js';
import { projectVersion } from '../util/version.js';

function emptyTap(name: string): Dict {
  return {
    name, ipv4_addr: '', ipv4_netmask: '', ipv4_gateway: '', ipv4_network: '',
    ipv6_addr: '', ipv6_netmask: '', ipv6_gateway: '', ipv6_network: '',
  };
}

function dottedMask(prefixlen: number): string {
  return format4(prefixlen === 0 ? 0 : (0xffffffff << (32 - prefixlen)) >>> 0);
}

export function partitionDict(settings: FormatSettings, observed: Observed, net: NetworkModel | undefined, i: number): Dict {
  const reference = `${settings.partitionBaseName}${i}`;
  const dir = `${settings.instanceRoot}/${reference}`;
  const tap = emptyTap(`${settings.tapBaseName}${i}`);
  let addressList: MarshalValue = [];
  let ipv6Range: MarshalValue = {};
  let tun: MarshalValue = null;
  const p = net?.partitions[i];
  if (net && p) {
    addressList = [
      { addr: format4(p.ipv4), netmask: '255.255.255.255' },
      { addr: format6(p.ipv6), netmask: netmask6(net.base.prefixlen) },
    ];
    if (p.range) ipv6Range = rangeDict(p.range);
    if (p.tapIpv4) Object.assign(tap, p.tapIpv4);
    if (p.tap) {
      tap.ipv6_addr = p.tap.ipv6_addr;
      tap.ipv6_netmask = p.tap.ipv6_netmask;
      tap.ipv6_gateway = p.tap.ipv6_gateway;
      tap.ipv6_network = p.tap.ipv6_network;
    }
    if (p.tun) {
      const t = emptyTap(p.tun.name);
      t.ipv4_addr = format4(p.tun.ipv4);
      t.ipv4_netmask = dottedMask(p.tun.ipv4Prefixlen);
      t.ipv4_network = `${format4(p.tun.ipv4)}/${dottedMask(p.tun.ipv4Prefixlen)}`;
      if (p.tun.ipv6) {
        t.ipv6_addr = format6(p.tun.ipv6.address);
        t.ipv6_netmask = netmask6(p.tun.ipv6.range.prefixlen);
        t.ipv6_network = `${format6(p.tun.ipv6.address)}/${p.tun.ipv6.range.prefixlen}`;
      }
      tun = t;
    }
  } else {
    // alter_network = false: report what was configured before, as stored.
    const stored = storedPartition(observed, reference);
    if (stored) {
      addressList = stored.address_list ?? [];
      ipv6Range = stored.ipv6_range ?? {};
    }
  }
  return {
    address_list: addressList,
    external_storage_list: [],
    ipv6_range: ipv6Range,
    path: dir,
    reference,
    tap,
    tun,
    user: { additional_group_list: [settings.softwareUser], name: `${settings.userBaseName}${i}`, path: dir, shell: '/bin/sh' },
  };
}

export function computerDict(settings: FormatSettings, observed: Observed, net: NetworkModel | undefined, partitions: Dict[]): Dict {
  const stored = observed.stored;
  return {
    address: net ? format6(net.base.address) : (stored?.address ?? null),
    instance_root: settings.instanceRoot,
    instance_storage_home: settings.instanceStorageHome ?? null,
    interface: settings.interfaceName
      ? {
          ipv4_local_network: settings.ipv4LocalNetworkText ?? null,
          ipv6_interface: settings.ipv6Interface ?? settings.interfaceName,
          ipv6_prefixshift: settings.prefixShift,
          name: settings.interfaceName,
        }
      : null,
    ipv6_interface: settings.ipv6Interface && settings.ipv6Interface !== settings.interfaceName ? settings.ipv6Interface : null,
    netmask: net ? netmask6(net.base.prefixlen) : (stored?.netmask ?? null),
    os_type: observed.osType,
    partition_has_ipv6_range: settings.partitionHasIpv6Range,
    partition_list: partitions,
    // The reference asks three public web services for this; we send none (no traffic beyond the master).
    public_ipv4_address: null,
    // The reference reports its Python version here; we report Node's.
    python_version: process.versions.node,
    reference: settings.computerId,
    slapos_version: projectVersion(),
    software_root: settings.softwareRoot,
    software_user: settings.softwareUser,
    tap_gateway_interface: settings.tapGatewayInterface,
    tap_ipv6: settings.tapIpv6,
  };
}

/** JSON with keys sorted at every level, as Python's json.dumps(sort_keys=True). */
export function sortedJson(value: MarshalValue, indent: number): string {
  const sort = (v: MarshalValue): MarshalValue => {
    if (Array.isArray(v)) return v.map(sort);
    if (v !== null && typeof v === 'object') {
      const out: Dict = {};
      for (const key of Object.keys(v).sort()) out[key] = sort(v[key] as MarshalValue);
      return out;
    }
    return v;
  };
  // Python escapes non-ASCII (ensure_ascii); do the same so files compare byte for byte.
  return JSON.stringify(sort(value), null, indent).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
