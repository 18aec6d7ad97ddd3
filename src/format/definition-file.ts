// The reference's partition definition files (`node format -i/-o`,
// slapformat.md §6.4), configparser format:
//   [computer]     address = ADDR/NETMASK (optional), software_user (default slapsoft)
//   [partition_<i>] address = ADDR/NETMASK ADDR/NETMASK …, user, network_interface
//                  (the tap), pathname (reference and directory), ipv6_range = ADDR/PLEN (optional)
// -i gives the partitions' addresses and ranges as stored values (as a state file
// would); the names must be this node's (our format derives them from the base
// names), else the file is refused before anything changes. -o writes the
// formatted computer in the same form. Pure: parse, check, serialise.
import { isIP } from 'node:net';
import { IniError, parseIni, sectionValues } from '../config/ini.js';
import { netmask6 } from './addressing.js';
import type { Dict } from './computer-xml.js';

export class DefinitionError extends Error {
  constructor(file: string, reason: string) {
    super(`${file}: ${reason} (nothing was changed)`);
    this.name = 'DefinitionError';
  }
}

export interface AddressEntry { addr: string; netmask: string }

export interface DefinitionPartition {
  index: number;
  pathname: string;
  user: string;
  networkInterface: string;
  addresses: AddressEntry[];
  ipv6Range?: { addr: string; prefixlen: number };
}

export interface Definition {
  address?: AddressEntry;
  softwareUser: string;
  partitions: DefinitionPartition[];
}

/** "ADDR/NETMASK": an IP address and a netmask (dotted, IPv6 form, or a prefix length). */
function addressEntry(file: string, where: string, text: string): AddressEntry {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const netmask = slash < 0 ? '' : text.slice(slash + 1);
  if (isIP(addr) === 0 || netmask === '') throw new DefinitionError(file, `${where}: not ADDRESS/NETMASK: ${JSON.stringify(text)}`);
  return { addr, netmask };
}

/** Parses a definition file for `partitionAmount` partitions ([partition_0] … [partition_<amount-1>], as the reference reads them). */
export function parseDefinition(text: string, file: string, partitionAmount: number): Definition {
  let doc;
  try {
    doc = parseIni(text, file);
  } catch (error) {
    throw new DefinitionError(file, error instanceof IniError ? error.reason : String(error));
  }
  const computer = sectionValues(doc, 'computer');
  if (!computer) throw new DefinitionError(file, 'no [computer] section');
  const address = computer.get('address');
  const definition: Definition = { softwareUser: computer.get('software_user') || 'slapsoft', partitions: [] };
  if (address) definition.address = addressEntry(file, '[computer] address', address);
  for (let i = 0; i < partitionAmount; i++) {
    const section = `partition_${i}`;
    const values = sectionValues(doc, section);
    if (!values) throw new DefinitionError(file, `no [${section}] section (partition_amount is ${partitionAmount})`);
    const need = (key: string) => {
      const value = values.get(key);
      if (!value) throw new DefinitionError(file, `[${section}] ${key} is missing`);
      return value;
    };
    const partition: DefinitionPartition = {
      index: i, pathname: need('pathname'), user: need('user'), networkInterface: need('network_interface'),
      addresses: need('address').split(/\s+/).filter((a) => a !== '').map((a) => addressEntry(file, `[${section}] address`, a)),
    };
    const range = values.get('ipv6_range');
    if (range) {
      const [addr = '', plen = ''] = range.split('/');
      if (isIP(addr) !== 6 || !/^\d{1,3}$/.test(plen) || Number(plen) > 128) throw new DefinitionError(file, `[${section}] ipv6_range: not IPV6/PREFIXLEN: ${JSON.stringify(range)}`);
      partition.ipv6Range = { addr, prefixlen: Number(plen) };
    }
    definition.partitions.push(partition);
  }
  return definition;
}

export interface NodeNames {
  partitionBaseName: string;
  userBaseName: string;
  tapBaseName: string;
  softwareUser: string;
  /** With alter_network, each partition needs exactly its IPv4 and its IPv6 (as the reference). */
  alterNetwork: boolean;
}

/** Why this node cannot take the definition as it is (names that are not this node's, address counts); empty when it can. */
export function definitionProblems(definition: Definition, names: NodeNames): string[] {
  const problems: string[] = [];
  if (definition.softwareUser !== names.softwareUser) problems.push(`[computer] software_user is ${definition.softwareUser}, this node's is ${names.softwareUser}`);
  for (const p of definition.partitions) {
    const expect: [string, string, string][] = [
      ['pathname', p.pathname, `${names.partitionBaseName}${p.index}`],
      ['user', p.user, `${names.userBaseName}${p.index}`],
      ['network_interface', p.networkInterface, `${names.tapBaseName}${p.index}`],
    ];
    for (const [key, given, ours] of expect) if (given !== ours) problems.push(`[partition_${p.index}] ${key} is ${given}, this node's is ${ours}`);
    if (names.alterNetwork) {
      const v4 = p.addresses.filter((a) => isIP(a.addr) === 4).length;
      const v6 = p.addresses.filter((a) => isIP(a.addr) === 6).length;
      if (v4 !== 1 || v6 !== 1) problems.push(`[partition_${p.index}] address: one IPv4 and one IPv6 needed with alter_network, not ${p.addresses.length} address(es)`);
    }
  }
  return problems;
}

/** The definition as the stored computer dict format reads (addresses, ranges, taps), in place of the state file. */
export function definitionAsStored(definition: Definition): Dict {
  return {
    ...(definition.address ? { address: definition.address.addr, netmask: definition.address.netmask } : {}),
    partition_list: definition.partitions.map((p) => ({
      reference: p.pathname,
      address_list: p.addresses.map((a) => ({ addr: a.addr, netmask: a.netmask })),
      tap: { name: p.networkInterface },
      user: { name: p.user },
      ipv6_range: (p.ipv6Range
        ? { addr: p.ipv6Range.addr, prefixlen: p.ipv6Range.prefixlen, netmask: netmask6(p.ipv6Range.prefixlen), network: `${p.ipv6Range.addr}/${p.ipv6Range.prefixlen}` }
        : {}) as Dict,
    })),
  };
}

/** The definition file of a formatted computer dict (the reference's -o keys). */
export function definitionText(computer: Dict): string {
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const lines = ['[computer]'];
  if (str(computer.address)) lines.push(`address = ${str(computer.address)}/${str(computer.netmask)}`);
  if (str(computer.software_user)) lines.push(`software_user = ${str(computer.software_user)}`);
  const partitions = Array.isArray(computer.partition_list) ? (computer.partition_list as Dict[]) : [];
  partitions.forEach((p, i) => {
    const addresses = (Array.isArray(p.address_list) ? (p.address_list as Dict[]) : []).map((a) => `${str(a.addr)}/${str(a.netmask)}`);
    const range = (p.ipv6_range ?? {}) as Dict;
    lines.push('', `[partition_${i}]`, `address = ${addresses.join(' ')}`);
    if (str(range.addr) && range.prefixlen !== undefined) lines.push(`ipv6_range = ${str(range.addr)}/${String(range.prefixlen)}`);
    lines.push(`user = ${str((p.user as Dict | undefined)?.name)}`, `network_interface = ${str((p.tap as Dict | undefined)?.name)}`, `pathname = ${str(p.reference)}`);
  });
  return `${lines.join('\n')}\n`;
}
