// The managers of managers.md, run at the reference's points: after a
// partition's processing (instanceTearDown), at destruction (report), at boot
// (rules re-applied) and at format (pools). Each manager plans from the
// partition's request file (plans.ts, pure) and applies idempotently; what was
// applied is kept in root-owned state (state.ts) to be undone exactly. A
// refusal or a failure of one manager for one partition is logged in the
// partition's log and the node's and recorded for status; it never stops the
// other managers or partitions.
import { chownSync, chmodSync, readFileSync, realpathSync, statSync } from 'node:fs';
import type { Cpuset } from '../cgroup/cpuset.js';
import { realUid } from '../cgroup/attach.js';
import { nft as makeNft, type Nft } from '../firewall/nft.js';
import {
  baseScript, firewallScript, redirectScript, removeFirewallScript, removeRedirectScript, removeWhitelistScript, whitelistScript,
} from '../firewall/ruleset.js';
import type { User } from '../users/user.js';
import type { Logger } from '../util/log.js';
import { planCpuset, planDevperm, planFirewall, planPortredir, planWhitelist, routableFromIpList, type Planned } from './plans.js';
import { readPools, releasePools } from './pools.js';
import { readRequest, REQUEST_FILES } from './request.js';
import type { ManagerSettings } from './settings.js';
import { allManagerStates, readManagerState, removeManagerState, writeManagerState, type PartitionManagerState } from './state.js';

export { managerSettings, managersActive, type ManagerSettings } from './settings.js';

export interface ManagedPartition {
  id: string;
  dir: string;
  user: User;
  /** ip_list + full_ip_list of the master's parameters (read only when a manager needs it). */
  ipList(): [string, string][];
  /** The instance's SLA/filter dict, or null when the master sends none. */
  filter(): Record<string, unknown> | null;
  /** The partition's log (its instance.log and the node's). */
  log: Logger;
}

export interface ManagerDeps {
  log: Logger;
  nft?: Nft;
  /** undefined: cpuset unusable on this host (logged when a request needs it). */
  cpuset?: Cpuset | undefined;
  /** "tcp/8080" of listening sockets; default: /proc/net/{tcp,tcp6,udp,udp6}. */
  listening?: () => Set<string>;
  ownerOf?: (pid: number) => number | undefined;
}

function procOwner(pid: number): number | undefined {
  try {
    return realUid(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Listening TCP sockets and bound UDP sockets of this network namespace (/proc/net). */
export function listeningPorts(): Set<string> {
  const out = new Set<string>();
  for (const [file, proto, listenState] of [['tcp', 'tcp', '0A'], ['tcp6', 'tcp', '0A'], ['udp', 'udp', '07'], ['udp6', 'udp', '07']] as const) {
    let text = '';
    try {
      text = readFileSync(`/proc/net/${file}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      const port = f[1]?.split(':')[1];
      if (port && f[3] === listenState) out.add(`${proto}/${parseInt(port, 16)}`);
    }
  }
  return out;
}

/** realpath of a /dev path when it names a block device. */
function resolveBlock(p: string): string | undefined {
  try {
    const real = realpathSync(p);
    return real.startsWith('/dev/') && statSync(real).isBlockDevice() ? real : undefined;
  } catch {
    return undefined;
  }
}

export function diskGid(): number {
  try {
    const line = readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('disk:'));
    const gid = Number(line?.split(':')[2]);
    return Number.isInteger(gid) ? gid : 0;
  } catch {
    return 0;
  }
}

/** Gives a block device to a user (uid, group disk, 0660), or back to root. */
export function ownDevice(device: string, uid: number): void {
  const real = resolveBlock(device);
  if (!real) throw new Error(`${device} is not a block device`);
  chownSync(real, uid, diskGid());
  chmodSync(real, 0o660);
}

export class Managers {
  readonly nft: Nft;
  private baseReady = false;
  /** Every partition's state, read once per command run (a pass over n partitions reads n files, not n²). */
  private cache: Map<string, PartitionManagerState> | undefined;

  constructor(readonly settings: ManagerSettings, private readonly deps: ManagerDeps) {
    this.nft = deps.nft ?? makeNft(settings.nftCommand, settings.timeoutMs);
  }

  private enabled(name: string): boolean {
    return (this.settings.enabled as string[]).includes(name);
  }

  private get usesNft(): boolean {
    return this.enabled('portredir') || this.enabled('whitelistfirewall') || this.settings.firewall !== undefined;
  }

  /** The table and base chains (one transaction; once per process). */
  async ensureBase(): Promise<void> {
    if (this.baseReady) return;
    await this.nft.apply(baseScript());
    this.baseReady = true;
  }

  /** After a partition's processing: every enabled manager, then [firewall]. */
  async instance(p: ManagedPartition): Promise<PartitionManagerState> {
    const root = this.settings.instanceRoot;
    this.cache ??= new Map(allManagerStates(root).map((s) => [s.partition, s]));
    const previous = this.cache.get(p.id) ?? readManagerState(root, p.id);
    const state: PartitionManagerState = { ...previous, partition: p.id, uid: p.user.uid, refused: [] };
    const others = [...this.cache.values()].filter((s) => s.partition !== p.id);
    const record = (manager: string, reason: string, level: 'warn' | 'error' = 'warn') => {
      state.refused.push({ manager, reason });
      p.log[level]({ manager }, `${p.id}: ${manager}: ${reason}`);
      // The partition's own log already reaches the node's when it is a child of it; say it once more at node level otherwise.
      if (p.log !== this.deps.log) this.deps.log.debug({ partition: p.id, manager }, reason);
    };
    const attempt = async (manager: string, fn: () => Promise<void> | void) => {
      try {
        await fn();
      } catch (error) {
        record(manager, `failed, nothing changed: ${(error as Error).message}`, 'error');
      }
    };
    if (this.usesNft) await attempt('nftables', () => this.ensureBase());
    for (const name of this.settings.enabled) {
      if (name === 'cpuset') await attempt(name, () => this.cpusetPass(p, state, others, record));
      else if (name === 'devperm') await attempt(name, () => this.devpermPass(p, state, others, record));
      else if (name === 'portredir') await attempt(name, () => this.portredirPass(p, state, others, record));
      else if (name === 'whitelistfirewall') await attempt(name, () => this.whitelistPass(p, state, record));
      // prerm acts at destruction only (src/accounting/destroy.ts).
    }
    if (this.settings.firewall) await attempt('firewall', () => this.firewallPass(p, state, record));
    state.updated = new Date().toISOString();
    writeManagerState(root, state);
    this.cache.set(p.id, state);
    return state;
  }

  private async cpusetPass(p: ManagedPartition, state: PartitionManagerState, others: PartitionManagerState[], record: (m: string, r: string) => void): Promise<void> {
    const request = readRequest(p.dir, REQUEST_FILES.cpuset);
    if (request.kind === 'refused') return record('cpuset', request.reason);
    const held = state.cpuset;
    const cpuset = this.deps.cpuset;
    if (request.kind === 'absent' || request.text.trim() === '') {
      if (held && cpuset) cpuset.release(p.id, held.cpus);
      delete state.cpuset;
      return;
    }
    if (!cpuset) return record('cpuset', 'cpuset unusable on this host (no cpuset controller); nothing pinned');
    const hostCpus = cpuset.hostCpus();
    const takenByOthers = new Map<number, string>();
    for (const o of others) for (const cpu of o.cpuset?.cpus ?? []) takenByOthers.set(cpu, o.partition);
    const heldPins = new Map<number, number>((held?.pids ?? []).map((pid, i) => [pid, held?.cpus[i] as number]));
    const plan = planCpuset({
      text: request.text, user: p.user.name, uid: p.user.uid, powerUsers: this.settings.powerUsers,
      ownerOf: this.deps.ownerOf ?? procOwner, pool: hostCpus.slice(1), takenByOthers, held: heldPins,
    });
    if (!plan.ok) return record('cpuset', plan.reason);
    const pins = [...plan.value.pins];
    const cpus = pins.map(([, cpu]) => cpu);
    for (const [pid, cpu] of pins) cpuset.pin(p.id, cpus, pid, cpu);
    const dropped = (held?.cpus ?? []).filter((c) => !cpus.includes(c));
    if (dropped.length > 0) cpuset.release(p.id, dropped);
    if (plan.value.waiting.length > 0) record('cpuset', `no free CPU for pids ${plan.value.waiting.join(' ')}; retried on the next pass`);
    state.cpuset = { cpus, pids: pins.map(([pid]) => pid), waiting: plan.value.waiting };
    if (pins.length > 0) p.log.info({ partition: p.id, pins: pins.map(([pid, cpu]) => `${pid}@${cpu}`) }, 'cpuset: pids pinned (pid@cpu)');
  }

  private async devpermPass(p: ManagedPartition, state: PartitionManagerState, others: PartitionManagerState[], record: (m: string, r: string) => void): Promise<void> {
    const request = readRequest(p.dir, REQUEST_FILES.devperm);
    if (request.kind === 'refused') return record('devperm', request.reason);
    const held = state.devperm?.devices ?? [];
    let wanted: string[] = [];
    if (request.kind === 'present') {
      const takenByOthers = new Map<string, string>();
      for (const o of others) for (const d of o.devperm?.devices ?? []) takenByOthers.set(d, o.partition);
      const pools = readPools(this.settings.instanceRoot);
      for (const [id, d] of Object.entries(pools.blockDevice)) if (id !== p.id) takenByOthers.set(d, id);
      const allowed = this.settings.allowedDisks.map((d) => resolveBlock(d) ?? d);
      const plan: Planned<string[]> = planDevperm({ text: request.text, allowed, resolveBlock, takenByOthers });
      if (!plan.ok) return record('devperm', plan.reason);
      wanted = plan.value;
    }
    for (const device of wanted) {
      if (statSync(device).uid !== p.user.uid) {
        ownDevice(device, p.user.uid);
        p.log.warn({ code: 'DEVICE_OWNERSHIP_TRANSFERRED', partition: p.id, device, user: p.user.name }, 'devperm: Transfer ownership');
      }
    }
    for (const device of held.filter((d) => !wanted.includes(d))) {
      ownDevice(device, 0);
      p.log.info({ partition: p.id, device }, 'devperm: given back to root');
    }
    if (wanted.length > 0) state.devperm = { devices: wanted };
    else delete state.devperm;
  }

  private async portredirPass(p: ManagedPartition, state: PartitionManagerState, others: PartitionManagerState[], record: (m: string, r: string) => void): Promise<void> {
    const request = readRequest(p.dir, REQUEST_FILES.portredir);
    if (request.kind === 'refused') return record('portredir', request.reason);
    const held = state.portredir?.redirects ?? [];
    if (request.kind === 'absent') {
      if (held.length > 0) await this.nft.apply(removeRedirectScript(p.id, held));
      delete state.portredir;
      return;
    }
    const takenByOthers = new Map<string, string>();
    for (const o of others) for (const r of o.portredir?.redirects ?? []) takenByOthers.set(`${r.protocol}/${r.srcPort}`, o.partition);
    const own = p.ipList().map(([, a]) => a);
    const plan = planPortredir({
      text: request.text, own, takenByOthers, listening: (this.deps.listening ?? listeningPorts)(),
      held: new Set(held.map((r) => `${r.protocol}/${r.srcPort}`)),
    });
    if (!plan.ok) return record('portredir', plan.reason);
    if (JSON.stringify(plan.value) !== JSON.stringify(held) || !state.portredir) {
      await this.nft.apply(redirectScript(p.id, plan.value, held));
      p.log.info({ partition: p.id, redirects: plan.value.map((r) => `${r.protocol}/${r.srcPort}->${r.destAddress}:${r.destPort}`) }, 'portredir: rules applied');
    }
    state.portredir = { redirects: plan.value };
  }

  private async whitelistPass(p: ManagedPartition, state: PartitionManagerState, record: (m: string, r: string) => void): Promise<void> {
    const request = readRequest(p.dir, REQUEST_FILES.whitelistfirewall);
    if (request.kind === 'refused') return record('whitelistfirewall', request.reason);
    if (request.kind === 'absent') {
      if (state.whitelistfirewall) await this.nft.apply(removeWhitelistScript(p.id, p.user.uid));
      delete state.whitelistfirewall;
      return;
    }
    const plan = planWhitelist(request.text);
    if (!plan.ok) return record('whitelistfirewall', plan.reason);
    if (JSON.stringify(plan.value) !== JSON.stringify(state.whitelistfirewall?.addresses)) {
      await this.nft.apply(whitelistScript(p.id, p.user.uid, plan.value));
      p.log.info({ partition: p.id, addresses: plan.value.length }, 'Updated rules for partition (outbound IPv4 limited)');
    }
    state.whitelistfirewall = { addresses: plan.value };
  }

  /** The partition's routable IPv4: route_* entries of ip_list and the pool's address. */
  routable(p: ManagedPartition): string[] {
    const pool = readPools(this.settings.instanceRoot).ipv4[p.id];
    return [...new Set([...routableFromIpList(p.ipList()), ...(pool ? [pool] : [])])];
  }

  private async firewallPass(p: ManagedPartition, state: PartitionManagerState, record: (m: string, r: string) => void): Promise<void> {
    const addresses = this.routable(p);
    const previous = state.firewall?.addresses ?? [];
    if (addresses.length === 0) {
      if (state.firewall) await this.nft.apply(removeFirewallScript(p.id, previous));
      delete state.firewall;
      return;
    }
    const plan = planFirewall({ addresses, filter: p.filter(), authorizedSources: this.settings.firewall?.authorizedSources ?? [] });
    if (!plan.ok) return record('firewall', plan.reason);
    const wanted = { addresses, ...plan.value };
    if (JSON.stringify(wanted) !== JSON.stringify(state.firewall)) {
      await this.nft.apply(firewallScript(p.id, wanted, previous));
      p.log.info({ partition: p.id, mode: wanted.mode, addresses, sources: wanted.sources.length }, 'firewall: rules applied');
    }
    state.firewall = wanted;
  }

  /** Destruction (the reference's report hook): everything applied for the partition goes, pools included. */
  async destroy(id: string, log: Logger = this.deps.log): Promise<void> {
    const root = this.settings.instanceRoot;
    const state = readManagerState(root, id);
    if (state.cpuset && this.deps.cpuset) this.deps.cpuset.release(id, state.cpuset.cpus);
    for (const device of state.devperm?.devices ?? []) {
      try {
        ownDevice(device, 0);
      } catch (error) {
        log.warn({ code: 'DEVICE_RELEASE_FAILED', partition: id, device, err: error }, 'devperm: device not given back');
      }
    }
    const scripts: string[] = [];
    if (state.portredir) scripts.push(removeRedirectScript(id, state.portredir.redirects));
    if (state.whitelistfirewall && state.uid !== undefined) scripts.push(removeWhitelistScript(id, state.uid));
    if (state.firewall) scripts.push(removeFirewallScript(id, state.firewall.addresses));
    if (scripts.length > 0) {
      await this.ensureBase();
      await this.nft.apply(scripts.join(''));
    }
    await releasePools(this.settings, id, log);
    removeManagerState(root, id);
    this.cache?.delete(id);
    if (scripts.length > 0 || state.devperm || state.cpuset) log.info({ partition: id }, 'managers: rules, devices and CPUs of the partition released');
  }

  /** `slapos node boot`: the kernel forgot the rules; apply every partition's stored state again (one transaction). */
  async boot(): Promise<number> {
    if (!this.usesNft) return 0;
    const states = allManagerStates(this.settings.instanceRoot);
    const scripts = [baseScript()];
    for (const s of states) {
      if (s.portredir) scripts.push(redirectScript(s.partition, s.portredir.redirects, []));
      if (s.whitelistfirewall && s.uid !== undefined) scripts.push(whitelistScript(s.partition, s.uid, s.whitelistfirewall.addresses));
      if (s.firewall) scripts.push(firewallScript(s.partition, s.firewall, []));
    }
    await this.nft.apply(scripts.join(''));
    this.baseReady = true;
    return states.length;
  }

  status(): PartitionManagerState[] {
    return allManagerStates(this.settings.instanceRoot);
  }
}

/** Status lines (pure). */
export function formatManagerStatus(enabled: readonly string[], firewall: boolean, states: readonly PartitionManagerState[]): string {
  const head = `managers: ${enabled.length > 0 ? enabled.join(', ') : 'none'}${firewall ? '; [firewall] on nftables' : ''}`;
  const lines = states.map((s) => {
    const parts: string[] = [];
    if (s.cpuset) parts.push(`cpuset ${s.cpuset.cpus.join(',') || '-'}${s.cpuset.waiting.length ? ` (${s.cpuset.waiting.length} waiting)` : ''}`);
    if (s.devperm) parts.push(`devperm ${s.devperm.devices.join(',')}`);
    if (s.portredir) parts.push(`portredir ${s.portredir.redirects.map((r) => `${r.protocol}/${r.srcPort}->${r.destAddress}:${r.destPort}`).join(',') || '-'}`);
    if (s.whitelistfirewall) parts.push(`whitelist ${s.whitelistfirewall.addresses.length} addresses`);
    if (s.firewall) parts.push(`firewall ${s.firewall.mode} ${s.firewall.addresses.join(',')}`);
    if (s.refused.length) parts.push(`refused: ${s.refused.map((r) => `${r.manager}: ${r.reason}`).join('; ')}`);
    return `  ${s.partition}: ${parts.join('; ') || 'nothing applied'}`;
  });
  return [head, ...lines].join('\n');
}
