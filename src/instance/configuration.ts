// What an instance is told about itself: one JSON file in the partition and
// the same data as a [slapos-node-configuration] buildout section (option names of
// slapos.cookbook:slapconfiguration; the release's own [slap-configuration] is left alone). Pure: partition + .slapos-resource in,
// data and text out. The contract is documented in docs/instance.md.
import { isRecord, PyDict, PyFloat, PyObject, PySet, PyTuple, type PyRecord, type PyValue } from '../slap/pyvalue.js';
import type { ComputerPartition } from '../slap/shapes.js';

/** Keys the master adds to _parameter_dict; everything else is the requester's. */
export const MASTER_PARAMETER_KEYS = new Set([
  'timestamp', 'ip_list', 'full_ip_list', 'full_address_list', 'slap_software_type', 'slave_instance_list',
  'instance_title', 'root_instance_title', 'slap_computer_id', 'slap_computer_partition_id', 'slap_software_release_url',
]);

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A marshalled value as JSON: tuples and sets become arrays, objects their state. */
export function toJson(value: PyValue | undefined): Json {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string' || typeof value === 'boolean' || typeof value === 'number') return value;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
  if (value instanceof PyFloat) return value.value;
  if (value instanceof PyTuple || value instanceof PySet) return value.items.map(toJson);
  if (value instanceof PyDict) return Object.fromEntries(value.entries.map(([k, v]) => [String(toJson(k)), toJson(v)]));
  if (value instanceof PyObject) return toJson(value.state);
  if (Array.isArray(value)) return value.map(toJson);
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  return null;
}

/** The parts of .slapos-resource (written by format) that an instance needs. */
export interface PartitionResource {
  address_list?: { addr: string; netmask: string }[];
  ipv6_range?: Record<string, string>;
  tap?: Record<string, string> | null;
  tun?: Record<string, string> | null;
  user?: { name?: string };
}

export interface InstanceConfiguration {
  'computer-id': string;
  'partition-id': string;
  'instance-title': string | null;
  'root-instance-title': string | null;
  'software-release-url': string | null;
  'software-type': string | null;
  'requested-state': string;
  timestamp: string | null;
  'instance-guid': string | null;
  'server-url': string;
  /** The requester's parameters (the master's own keys removed). */
  parameters: { [key: string]: Json };
  'ip-list': [string, string][];
  ipv4: string[];
  ipv6: string[];
  'ipv4-random': string;
  'ipv6-random': string;
  'ipv6-range': Record<string, string> | null;
  tap: Record<string, string> | null;
  tun: Record<string, string> | null;
  'slave-instance-list': Json[];
  'storage-home': string;
  /** Where the instance writes its connection parameters. */
  'connection-file': string;
}

export interface ConfigurationContext {
  masterUrl: string;
  storageHome: string;
  connectionFile: string;
}

const isIpv6 = (address: string) => address.includes(':');

export function instanceConfiguration(partition: ComputerPartition, resource: PartitionResource | undefined, context: ConfigurationContext): InstanceConfiguration {
  const params: PyRecord = partition.parameters ?? {};
  const str = (key: string): string | null => (typeof params[key] === 'string' ? (params[key] as string) : null);
  const parameters: { [key: string]: Json } = {};
  for (const [key, value] of Object.entries(params)) if (!MASTER_PARAMETER_KEYS.has(key)) parameters[key] = toJson(value);
  const ipList: [string, string][] = [];
  const raw = Array.isArray(params.ip_list) ? params.ip_list : [];
  for (const entry of raw) {
    const items = entry instanceof PyTuple ? entry.items : Array.isArray(entry) ? entry : [];
    if (typeof items[0] === 'string' && typeof items[1] === 'string') ipList.push([items[0], items[1]]);
  }
  // The master's list is the truth; .slapos-resource covers a master that sends none.
  const addresses = ipList.length > 0 ? ipList.map(([, a]) => a) : (resource?.address_list ?? []).map((a) => a.addr);
  const ipv4 = [...new Set(addresses.filter((a) => !isIpv6(a)))];
  const ipv6 = [...new Set(addresses.filter(isIpv6))];
  const range = resource?.ipv6_range && Object.keys(resource.ipv6_range).length > 0 ? resource.ipv6_range : null;
  const slaves = Array.isArray(params.slave_instance_list) ? params.slave_instance_list.map(toJson) : [];
  return {
    'computer-id': partition.computerId,
    'partition-id': partition.partitionId,
    'instance-title': str('instance_title'),
    'root-instance-title': str('root_instance_title'),
    'software-release-url': partition.softwareRelease?.url ?? str('slap_software_release_url'),
    'software-type': str('slap_software_type'),
    'requested-state': partition.requestedState,
    timestamp: params.timestamp === undefined || params.timestamp === null ? null : String(toJson(params.timestamp)),
    'instance-guid': partition.instanceGuid,
    'server-url': context.masterUrl,
    parameters,
    'ip-list': ipList,
    ipv4,
    ipv6,
    // Deterministic, unlike slapconfiguration's random pick: a re-run must not move the service.
    'ipv4-random': ipv4[0] ?? '',
    'ipv6-random': ipv6[0] ?? '',
    'ipv6-range': range,
    tap: resource?.tap ?? null,
    tun: resource?.tun ?? null,
    'slave-instance-list': slaves,
    'storage-home': context.storageHome,
    'connection-file': context.connectionFile,
  };
}

/**
 * A value as buildout reads it: `$` doubled (no substitution of the
 * requester's text), several lines indented as continuation lines
 * (leading/trailing blanks are lost, as with any buildout value).
 */
export function buildoutValue(value: string): string {
  const escaped = value.replaceAll('$', () => '$$').replace(/\r\n?/g, '\n');
  const lines = escaped.split('\n');
  if (lines.length === 1) return ` ${lines[0]}`.trimEnd();
  // Blank lines cannot be continuation lines: such values are exact only in the JSON file.
  return `\n${lines.filter((line) => line.trim() !== '').map((line) => `  ${line}`).join('\n')}`;
}

const OPTION_NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * The section name of our data in the instance buildout.cfg. Not
 * `[slap-configuration]`: releases define a section of that name themselves
 * (`recipe = slapos.cookbook:slapconfiguration`), and buildout would merge ours
 * into theirs, overriding their options. No release uses this name.
 */
export const NODE_CONFIGURATION_SECTION = 'slapos-node-configuration';

/** The [slapos-node-configuration] section: the same data as the JSON file. */
export function slapConfigurationSection(c: InstanceConfiguration, configurationFile: string): string {
  const lines: string[] = [`[${NODE_CONFIGURATION_SECTION}]`];
  const put = (key: string, value: string | null | undefined) => lines.push(`${key} =${buildoutValue(value ?? '')}`);
  put('configuration-file', configurationFile);
  put('computer', c['computer-id']);
  put('partition', c['partition-id']);
  put('url', c['server-url']);
  put('software-release-url', c['software-release-url']);
  put('slap-software-type', c['software-type']);
  put('instance-state', c['requested-state']);
  put('instance-guid', c['instance-guid']);
  put('root-instance-title', c['root-instance-title']);
  // Always present (empty when the master sends none), so a profile can refer to it.
  put('instance-title', c['instance-title']);
  put('timestamp', c.timestamp);
  put('ipv4', c.ipv4.join('\n'));
  put('ipv6', c.ipv6.join('\n'));
  put('ipv4-random', c['ipv4-random']);
  put('ipv6-random', c['ipv6-random']);
  if (c['ipv6-range']?.addr) put('ipv6-range-network', `${c['ipv6-range'].addr}/${c['ipv6-range'].prefixlen ?? c['ipv6-range'].netmask ?? ''}`);
  const tap = c.tap;
  if (tap?.name) {
    put('tap-name', tap.name);
    put('tap-ipv4', tap.ipv4_addr);
    put('tap-gateway', tap.ipv4_gateway);
    put('tap-netmask', tap.ipv4_netmask);
    put('tap-network', tap.ipv4_network);
    put('tap-ipv6', tap.ipv6_addr);
    put('tap-ipv6-gateway', tap.ipv6_gateway);
  }
  put('storage-home', c['storage-home']);
  put('connection-file', c['connection-file']);
  put('slave-instance-list', JSON.stringify(c['slave-instance-list']));
  for (const [key, value] of Object.entries(c.parameters).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    // Keys buildout cannot read as option names are only in the JSON file.
    if (!OPTION_NAME.test(key)) continue;
    put(`configuration.${key}`, typeof value === 'string' ? value : JSON.stringify(value));
  }
  return `${lines.join('\n')}\n`;
}
