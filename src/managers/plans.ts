// What each manager should hold for one partition, from its request file and
// what the other partitions hold (pure; managers.md §2-§6 and docs/managers.md).
// A request with any bad entry is refused as a whole: nothing of it is
// applied and the partition keeps what it had.
import type { Redirect } from '../firewall/ruleset.js';
import { parseJsonRequest, REQUEST_FILES } from './request.js';
import { canonicalAddress, isIpv4, isIpv4Network, isPlainObject, portOf } from './validate.js';

export type Planned<T> = { ok: true; value: T } | { ok: false; reason: string };
const refuse = <T>(reason: string): Planned<T> => ({ ok: false, reason });

export const MAX_ENTRIES = 256;

// ------------------------------------------------------------- whitelistfirewall

/** `["1.2.3.4", ...]` -> the IPv4 addresses (canonical, deduplicated). */
export function planWhitelist(text: string): Planned<string[]> {
  const rel = REQUEST_FILES.whitelistfirewall;
  const parsed = parseJsonRequest(rel, text);
  if (!parsed.ok) return refuse(parsed.reason);
  const list = parsed.value;
  if (!Array.isArray(list)) return refuse(`${rel}: not a JSON list; refused`);
  if (list.length > MAX_ENTRIES) return refuse(`${rel}: more than ${MAX_ENTRIES} entries; refused`);
  const out: string[] = [];
  for (const entry of list) {
    if (typeof entry !== 'string' || !isIpv4(entry)) return refuse(`${rel}: entry ${JSON.stringify(entry)?.slice(0, 80)} is not an IPv4 address; refused`);
    if (!out.includes(entry)) out.push(entry);
  }
  return { ok: true, value: out };
}

// ------------------------------------------------------------- portredir

export interface PortredirInput {
  text: string;
  /** The partition's own addresses (ip_list), canonical. */
  own: readonly string[];
  /** "tcp/8080" -> partition holding it. */
  takenByOthers: ReadonlyMap<string, string>;
  /** "tcp/8080" of sockets listening on the host. */
  listening: ReadonlySet<string>;
  /** Ports the partition already holds (its own listener may be the redirect's target, not a conflict). */
  held: ReadonlySet<string>;
}

export function planPortredir(input: PortredirInput): Planned<Redirect[]> {
  const rel = REQUEST_FILES.portredir;
  const parsed = parseJsonRequest(rel, input.text);
  if (!parsed.ok) return refuse(parsed.reason);
  const list = parsed.value;
  if (!Array.isArray(list)) return refuse(`${rel}: not a JSON list; refused`);
  if (list.length > MAX_ENTRIES) return refuse(`${rel}: more than ${MAX_ENTRIES} entries; refused`);
  const out: Redirect[] = [];
  const firstOwn6 = input.own.find((a) => a.includes(':'));
  for (const [i, entry] of list.entries()) {
    const where = `${rel}: entry ${i}`;
    if (!isPlainObject(entry)) return refuse(`${where} is not an object; refused`);
    const typeText = entry.type === undefined ? 'tcp' : typeof entry.type === 'string' ? entry.type.toLowerCase() : '';
    if (typeText !== 'tcp' && typeText !== 'udp') return refuse(`${where}: bad type ${JSON.stringify(entry.type)} (tcp or udp); refused`);
    const protocol = typeText;
    const srcPort = portOf(entry.srcPort);
    if (srcPort === undefined) return refuse(`${where}: bad srcPort ${JSON.stringify(entry.srcPort)}; refused`);
    if (srcPort < 1024) return refuse(`${where}: srcPort ${srcPort} is privileged (below 1024); refused`);
    const destPort = portOf(entry.destPort);
    if (destPort === undefined) return refuse(`${where}: bad destPort ${JSON.stringify(entry.destPort)}; refused`);
    let src: string | undefined;
    if (entry.srcAddress !== undefined) {
      const c = typeof entry.srcAddress === 'string' ? canonicalAddress(entry.srcAddress) : undefined;
      if (!c) return refuse(`${where}: bad srcAddress ${JSON.stringify(entry.srcAddress)}; refused`);
      src = c.text;
    }
    let dest: string;
    if (entry.destAddress !== undefined) {
      const c = typeof entry.destAddress === 'string' ? canonicalAddress(entry.destAddress) : undefined;
      if (!c) return refuse(`${where}: bad destAddress ${JSON.stringify(entry.destAddress)}; refused`);
      dest = c.text;
    } else {
      if (!firstOwn6) return refuse(`${where}: no destAddress and the partition has no IPv6 address; refused`);
      dest = firstOwn6;
    }
    if (!input.own.includes(dest)) return refuse(`${where}: destAddress ${dest} is not one of the partition's addresses; refused`);
    if (src !== undefined && src.includes(':') !== dest.includes(':')) {
      return refuse(`${where}: srcAddress ${src} and destAddress ${dest} are of different IP families (in-kernel NAT cannot translate between them); refused`);
    }
    const key = `${protocol}/${srcPort}`;
    const other = input.takenByOthers.get(key);
    if (other !== undefined) return refuse(`${where}: ${key} is already redirected for another partition; refused`);
    if (input.listening.has(key) && !input.held.has(key)) return refuse(`${where}: ${key} is in use on the host; refused`);
    if (out.some((r) => r.protocol === protocol && r.srcPort === srcPort)) return refuse(`${where}: ${key} listed twice; refused`);
    out.push({ protocol, srcPort, destAddress: dest, destPort, ...(src !== undefined ? { srcAddress: src } : {}) });
  }
  return { ok: true, value: out };
}

// ------------------------------------------------------------- devperm

export interface DevpermInput {
  text: string;
  /** Operator's allow-list, resolved (realpath). */
  allowed: readonly string[];
  /** realpath of a /dev path when it is a block device, else undefined. */
  resolveBlock(path: string): string | undefined;
  /** Resolved device -> partition already holding it. */
  takenByOthers: ReadonlyMap<string, string>;
}

export function planDevperm(input: DevpermInput): Planned<string[]> {
  const rel = REQUEST_FILES.devperm;
  const parsed = parseJsonRequest(rel, input.text);
  if (!parsed.ok) return refuse(parsed.reason);
  const list = parsed.value;
  if (!Array.isArray(list)) return refuse(`${rel}: not a JSON list; refused`);
  if (list.length > MAX_ENTRIES) return refuse(`${rel}: more than ${MAX_ENTRIES} entries; refused`);
  const out: string[] = [];
  for (const [i, entry] of list.entries()) {
    const where = `${rel}: entry ${i}`;
    if (!isPlainObject(entry) || typeof entry.disk !== 'string') return refuse(`${where} is not {"disk": "/dev/..."}; refused`);
    const disk = entry.disk;
    // Resolved only below /dev (root's tree): a path into a partition is never looked at.
    if (!/^\/dev\/[A-Za-z0-9_./:-]{1,200}$/.test(disk) || disk.split('/').includes('..')) return refuse(`${where}: ${JSON.stringify(disk.slice(0, 100))} is not a device path under /dev; refused`);
    const real = input.resolveBlock(disk);
    if (real === undefined) return refuse(`${where}: ${disk} is not a block device; refused`);
    if (!input.allowed.includes(real)) return refuse(`${where}: Disk ${disk} not in allowed disk list; refused`);
    const other = input.takenByOthers.get(real);
    if (other !== undefined) return refuse(`${where}: ${disk} is given to another partition; refused`);
    if (!out.includes(real)) out.push(real);
  }
  return { ok: true, value: out };
}

// ------------------------------------------------------------- cpuset

export interface CpusetInput {
  text: string;
  user: string;
  uid: number;
  powerUsers: ReadonlySet<string>;
  /** Real uid of each requested pid (undefined: no such process). */
  ownerOf(pid: number): number | undefined;
  /** Exclusive pool: every host CPU but the first. */
  pool: readonly number[];
  /** cpu -> partition holding it. */
  takenByOthers: ReadonlyMap<number, string>;
  /** What this partition holds now: pid -> cpu. */
  held: ReadonlyMap<number, number>;
}

export interface CpusetPlan {
  /** pid -> cpu wanted after this pass. */
  pins: Map<number, number>;
  /** Valid pids with no free CPU (retried next pass, as the reference). */
  waiting: number[];
}

export function planCpuset(input: CpusetInput): Planned<CpusetPlan> {
  const rel = REQUEST_FILES.cpuset;
  if (!input.powerUsers.has(input.user)) return refuse(`${rel}: User ${input.user} not allowed to modify cpuset! Allowed users are in power_user_list option in config file.`);
  const tokens = input.text.split(/\s+/).filter((t) => t !== '');
  if (tokens.length > MAX_ENTRIES) return refuse(`${rel}: more than ${MAX_ENTRIES} pids; refused`);
  const pids: number[] = [];
  for (const token of tokens) {
    if (!/^[1-9]\d{0,9}$/.test(token)) return refuse(`${rel}: ${JSON.stringify(token.slice(0, 40))} is not a pid; refused`);
    const pid = Number(token);
    const owner = input.ownerOf(pid);
    if (owner === undefined) return refuse(`${rel}: no process ${pid}; refused`);
    if (owner !== input.uid) return refuse(`${rel}: process ${pid} is not the partition's own (uid ${owner}); refused`);
    if (!pids.includes(pid)) pids.push(pid);
  }
  const pins = new Map<number, number>();
  const used = new Set<number>();
  // Keep what is already pinned.
  for (const pid of pids) {
    const cpu = input.held.get(pid);
    if (cpu !== undefined && input.pool.includes(cpu) && !used.has(cpu)) {
      pins.set(pid, cpu);
      used.add(cpu);
    }
  }
  const waiting: number[] = [];
  for (const pid of pids) {
    if (pins.has(pid)) continue;
    const cpu = input.pool.find((c) => !used.has(c) && !input.takenByOthers.has(c));
    if (cpu === undefined) {
      waiting.push(pid);
      continue;
    }
    pins.set(pid, cpu);
    used.add(cpu);
  }
  return { ok: true, value: { pins, waiting } };
}

// ------------------------------------------------------------- [firewall]

export interface FirewallInput {
  /** The partition's routable IPv4 addresses (ip_list entries on route_* interfaces, pool addresses). */
  addresses: readonly string[];
  /** The instance's SLA/filter dict (fw_restricted_access, fw_authorized_sources, fw_rejected_sources). */
  filter: Readonly<Record<string, unknown>> | null;
  authorizedSources: readonly string[];
}

export function planFirewall(input: FirewallInput): Planned<{ mode: 'accept' | 'reject'; sources: string[] }> {
  const filter = input.filter ?? {};
  const words = (key: string): Planned<string[]> => {
    const value = filter[key];
    if (value === undefined || value === null) return { ok: true, value: [] };
    if (typeof value !== 'string' || value.length > 16 * 1024) return refuse(`${key}: not a space-separated list; refused`);
    const out = value.split(/\s+/).filter((w) => w !== '');
    const bad = out.find((w) => !isIpv4(w) && !isIpv4Network(w));
    return bad === undefined ? { ok: true, value: out } : refuse(`${key}: ${JSON.stringify(bad.slice(0, 60))} is not an IPv4 address or network; refused`);
  };
  const restricted = filter.fw_restricted_access;
  const mode = restricted === 'off' ? 'reject' : 'accept';
  if (mode === 'accept') {
    const authorized = words('fw_authorized_sources');
    if (!authorized.ok) return authorized;
    // The reference uses the configuration's authorized_sources only with a filter dict.
    const sources = [...authorized.value, ...(input.filter ? input.authorizedSources : [])];
    return { ok: true, value: { mode, sources: [...new Set(sources)] } };
  }
  const rejected = words('fw_rejected_sources');
  if (!rejected.ok) return rejected;
  return { ok: true, value: { mode, sources: [...new Set(rejected.value)] } };
}

/** The IPv4 addresses of ip_list entries whose interface starts with route_ (managers.md §8). */
export function routableFromIpList(ipList: readonly (readonly [string, string])[]): string[] {
  return [...new Set(ipList.filter(([iface, addr]) => iface.startsWith('route_') && isIpv4(addr)).map(([, addr]) => addr))];
}

// ------------------------------------------------------------- pools

/**
 * One resource per partition, in partition order: a partition keeps what it
 * has while the resource is still in the pool; free resources go to the
 * partitions without one.
 */
export function assignPool(partitions: readonly string[], pool: readonly string[], current: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  const used = new Set<string>();
  for (const id of partitions) {
    const held = current[id];
    if (held !== undefined && pool.includes(held) && !used.has(held)) {
      out[id] = held;
      used.add(held);
    }
  }
  const free = pool.filter((r) => !used.has(r));
  for (const id of partitions) {
    if (out[id] !== undefined) continue;
    const next = free.shift();
    if (next === undefined) break;
    out[id] = next;
  }
  return out;
}
