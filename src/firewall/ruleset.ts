// The node's nftables ruleset as text for `nft -f -` (pure). Everything lives
// in one table, `inet slapos`, so that the node never touches rules it did not
// make. Base chains dispatch through verdict maps to one chain per partition
// and concern; a change of one partition is then one transaction that adds or
// flushes its chain and its map elements, and removal is the "add, then
// delete" idiom, which makes every script idempotent (nft 1.0.6 has no
// `destroy`).
import { createHash } from 'node:crypto';

export const TABLE = 'inet slapos';

/** The partition's chain name for a concern (nft 1.0.6 takes no quoted chain names: letters, digits, _ only). */
export function chainName(kind: 'wl' | 'pr' | 'fw', partition: string): string {
  if (/^[A-Za-z0-9_]{1,200}$/.test(partition)) return `${kind}_${partition}`;
  return `${kind}_h${createHash('sha1').update(partition).digest('hex').slice(0, 16)}`;
}

/**
 * The table, its maps and base chains. Base chains are flushed and refilled
 * in the same transaction, so running this again changes nothing; partition
 * chains and map elements are kept.
 */
export function baseScript(): string {
  return [
    `add table ${TABLE}`,
    // whitelistfirewall: the partition user's new outbound connections
    `add map ${TABLE} wl_uid { type uid : verdict ; }`,
    // portredir: protocol . host port -> the owning partition's chain
    `add map ${TABLE} redir { type inet_proto . inet_service : verdict ; }`,
    // [firewall]: a partition's own routable IPv4 -> its inbound chain
    `add map ${TABLE} fw_addr { type ipv4_addr : verdict ; }`,
    `add chain ${TABLE} output { type filter hook output priority 0 ; policy accept ; }`,
    `add chain ${TABLE} input { type filter hook input priority 0 ; policy accept ; }`,
    `add chain ${TABLE} forward { type filter hook forward priority 0 ; policy accept ; }`,
    `add chain ${TABLE} nat_pre { type nat hook prerouting priority -100 ; policy accept ; }`,
    `add chain ${TABLE} nat_out { type nat hook output priority -100 ; policy accept ; }`,
    ...['output', 'input', 'forward', 'nat_pre', 'nat_out'].map((c) => `flush chain ${TABLE} ${c}`),
    // Replies of connections already accepted (a partition's server answering anyone) are never cut.
    `add rule ${TABLE} output ct state established,related accept`,
    `add rule ${TABLE} output meta skuid vmap @wl_uid`,
    `add rule ${TABLE} input ip daddr vmap @fw_addr`,
    `add rule ${TABLE} forward ip daddr vmap @fw_addr`,
    `add rule ${TABLE} nat_pre meta l4proto . th dport vmap @redir`,
    `add rule ${TABLE} nat_out meta l4proto . th dport vmap @redir`,
    '',
  ].join('\n');
}

/** Removes the whole table (the last partition rule gone and the operator asked for it: tests). */
export function dropTableScript(): string {
  return `add table ${TABLE}\ndelete table ${TABLE}\n`;
}

const set = (items: readonly string[]) => `{ ${items.join(', ')} }`;

// ---------------------------------------------------------------- whitelistfirewall

/** Outbound IPv4 of `uid` limited to `addresses` (IPv6 is not filtered, as the reference). */
export function whitelistScript(partition: string, uid: number, addresses: readonly string[]): string {
  const chain = chainName('wl', partition);
  return [
    `add chain ${TABLE} ${chain}`,
    `flush chain ${TABLE} ${chain}`,
    ...(addresses.length > 0 ? [`add rule ${TABLE} ${chain} ip daddr ${set(addresses)} accept`] : []),
    `add rule ${TABLE} ${chain} meta nfproto ipv4 reject with icmp type admin-prohibited`,
    `add element ${TABLE} wl_uid { ${uid} : jump ${chain} }`,
    '',
  ].join('\n');
}

export function removeWhitelistScript(partition: string, uid: number): string {
  const chain = chainName('wl', partition);
  return [
    `add chain ${TABLE} ${chain}`,
    `add element ${TABLE} wl_uid { ${uid} : jump ${chain} }`,
    `delete element ${TABLE} wl_uid { ${uid} }`,
    `flush chain ${TABLE} ${chain}`,
    `delete chain ${TABLE} ${chain}`,
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- portredir

export interface Redirect {
  protocol: 'tcp' | 'udp';
  srcPort: number;
  /** Only packets to this address are redirected; undefined: any address of the destination's family. */
  srcAddress?: string | undefined;
  destAddress: string;
  destPort: number;
}

const family = (address: string) => (address.includes(':') ? 'ip6' : 'ip');
const hostPort = (address: string, port: number) => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`);

function redirectRule(chain: string, r: Redirect): string {
  const fam = family(r.destAddress);
  const match = r.srcAddress ? `${fam} daddr ${r.srcAddress}` : `meta nfproto ${fam === 'ip' ? 'ipv4' : 'ipv6'}`;
  // Only packets for this host: traffic routed through it (VM taps) to another host's port is never taken.
  return `add rule ${TABLE} ${chain} ${match} fib daddr type local ${r.protocol} dport ${r.srcPort} dnat ${fam} to ${hostPort(r.destAddress, r.destPort)}`;
}

/**
 * The partition's redirections, replacing what it had: `previous` are the
 * (protocol, port) keys it held, removed when no longer wanted.
 */
export function redirectScript(partition: string, redirects: readonly Redirect[], previous: readonly { protocol: string; srcPort: number }[]): string {
  const chain = chainName('pr', partition);
  const wanted = new Set(redirects.map((r) => `${r.protocol} . ${r.srcPort}`));
  const gone = [...new Set(previous.map((p) => `${p.protocol} . ${p.srcPort}`))].filter((k) => !wanted.has(k));
  return [
    `add chain ${TABLE} ${chain}`,
    ...gone.flatMap((k) => [`add element ${TABLE} redir { ${k} : jump ${chain} }`, `delete element ${TABLE} redir { ${k} }`]),
    `flush chain ${TABLE} ${chain}`,
    ...redirects.map((r) => redirectRule(chain, r)),
    ...[...wanted].map((k) => `add element ${TABLE} redir { ${k} : jump ${chain} }`),
    '',
  ].join('\n');
}

export function removeRedirectScript(partition: string, previous: readonly { protocol: string; srcPort: number }[]): string {
  const chain = chainName('pr', partition);
  return `${redirectScript(partition, [], previous)}delete chain ${TABLE} ${chain}\n`;
}

// ---------------------------------------------------------------- [firewall]

export interface PartitionFirewall {
  /** The partition's own routable IPv4 addresses (inbound to them is filtered). */
  addresses: string[];
  /** accept: only `sources` (and replies) reach the addresses; reject: all but `sources`. */
  mode: 'accept' | 'reject';
  sources: string[];
}

export function firewallScript(partition: string, fw: PartitionFirewall, previousAddresses: readonly string[]): string {
  const chain = chainName('fw', partition);
  const gone = previousAddresses.filter((a) => !fw.addresses.includes(a));
  const rules = fw.mode === 'accept'
    ? [
        `add rule ${TABLE} ${chain} ct state established,related accept`,
        ...(fw.sources.length > 0 ? [`add rule ${TABLE} ${chain} ip saddr ${set(fw.sources)} accept`] : []),
        `add rule ${TABLE} ${chain} reject with icmp type admin-prohibited`,
      ]
    : [
        ...(fw.sources.length > 0 ? [`add rule ${TABLE} ${chain} ip saddr ${set(fw.sources)} reject with icmp type admin-prohibited`] : []),
        `add rule ${TABLE} ${chain} accept`,
      ];
  return [
    `add chain ${TABLE} ${chain}`,
    ...gone.flatMap((a) => [`add element ${TABLE} fw_addr { ${a} : jump ${chain} }`, `delete element ${TABLE} fw_addr { ${a} }`]),
    `flush chain ${TABLE} ${chain}`,
    ...rules,
    ...fw.addresses.map((a) => `add element ${TABLE} fw_addr { ${a} : jump ${chain} }`),
    '',
  ].join('\n');
}

export function removeFirewallScript(partition: string, previousAddresses: readonly string[]): string {
  const chain = chainName('fw', partition);
  return [
    `add chain ${TABLE} ${chain}`,
    ...previousAddresses.flatMap((a) => [`add element ${TABLE} fw_addr { ${a} : jump ${chain} }`, `delete element ${TABLE} fw_addr { ${a} }`]),
    `flush chain ${TABLE} ${chain}`,
    `delete chain ${TABLE} ${chain}`,
    '',
  ].join('\n');
}
