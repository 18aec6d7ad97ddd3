// `slapos node boot` (slapgrid.md §7.4, slapformat.md §1): wait for the
// interface's global IPv6, format until the master has the computer, bang,
// and clear every partition's .timestamp so the next instance run reprocesses
// them all. Decisions are pure functions; effects come in through BootDeps so
// that tests can drive the retry loop with short delays.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { unlinkBeneath } from '../safe-fs/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from '../vendor/undici.js';
import type { SlaposConfig } from '../config/load.js';
import { requireKeys } from '../config/load.js';
import { runFormat } from '../format/run.js';
import { AF_INET6, Rtnl, type AddressState, type LinkState } from '../network/netlink.js';
import { tlsFromFiles } from '../slap/client.js';
import { masterEndpoint } from '../slap/master-url.js';
import { slapClientFromConfig } from '../slap/connect.js';
import { Exit } from '../util/exit-status.js';
import type { Logger } from '../util/log.js';

export interface BootTimings {
  /** How long to wait for a global IPv6 before giving up (the reference waits forever). */
  ipv6TimeoutMs: number;
  ipv6PollMs: number;
  /** Delay between format, master and bang attempts (the reference: 15 s). */
  retryDelayMs: number;
}

export const DEFAULT_BOOT_TIMINGS: BootTimings = { ipv6TimeoutMs: 600_000, ipv6PollMs: 1_000, retryDelayMs: 15_000 };

// ---- pure decisions ----

/** What boot does after a format run, by its exit status (the reference's loop). */
export function afterFormat(exitCode: number): 'bang' | 'retry' | 'wait-master' | 'give-up' {
  if (exitCode === Exit.SUCCESS) return 'bang';
  // Formatted and saved, but the master did not take the report: wait until it answers.
  if (exitCode === Exit.OFFLINE_OR_PROMISE) return 'wait-master';
  // Not root will not fix itself; the reference would loop forever here.
  if (exitCode === Exit.NOT_ROOT) return 'give-up';
  return 'retry';
}

/** Global unicast IPv6, as the reference's check: not unspecified, loopback, link-local, multicast or v4-mapped. ULAs count. */
export function isGlobalIpv6(value: bigint): boolean {
  if (value === 0n || value === 1n) return false;
  const top16 = Number(value >> 112n);
  if ((top16 & 0xffc0) === 0xfe80) return false;
  if ((top16 & 0xff00) === 0xff00) return false;
  if (value >> 32n === 0xffffn) return false;
  return true;
}

export type Ipv6Readiness = 'no-interface' | 'no-address' | 'ready';

/** Whether `iface` has a usable (not tentative, not failed DAD) global IPv6. */
export function ipv6Readiness(iface: string, links: LinkState[], addresses: AddressState[]): Ipv6Readiness {
  const link = links.find((l) => l.name === iface);
  if (!link) return 'no-interface';
  const ok = addresses.some(
    (a) => a.index === link.index && a.family === AF_INET6 && !a.tentative && !a.dadfailed && isGlobalIpv6(a.value as bigint),
  );
  return ok ? 'ready' : 'no-address';
}

/** The interface boot waits on: [slapformat] ipv6_interface, else interface_name. */
export function bootInterface(config: SlaposConfig): string | undefined {
  return config.slapformat.ipv6_interface ?? config.slapformat.interface_name;
}

// ---- effects ----

export interface BootDeps {
  config: SlaposConfig;
  log: Logger;
  timings: BootTimings;
  /** Defaults: netlink, in-process format, SLAP computerBang, an HTTP probe. */
  readNetwork?: () => Promise<{ links: LinkState[]; addresses: AddressState[] }>;
  format?: () => Promise<number>;
  bang?: (message: string) => Promise<void>;
  masterAnswers?: () => Promise<boolean>;
}

async function readNetworkNetlink(): Promise<{ links: LinkState[]; addresses: AddressState[] }> {
  const rtnl = new Rtnl();
  try {
    return { links: await rtnl.links(), addresses: await rtnl.addresses() };
  } finally {
    rtnl.close();
  }
}

/** Any HTTP answer from master_url counts: the reference pings the host, we ask the service. */
async function probeMaster(config: SlaposConfig): Promise<boolean> {
  const slapos = requireKeys(config, 'slapos', ['master_url']);
  const tls = tlsFromFiles(slapos);
  const endpoint = masterEndpoint(slapos.master_url);
  const connect = { ...(tls ?? {}), ...(endpoint.socketPath ? { socketPath: endpoint.socketPath } : {}) };
  const dispatcher = new Agent({ connect, headersTimeout: 10_000, bodyTimeout: 10_000, connectTimeout: 10_000 });
  try {
    const res = await request(endpoint.base, { dispatcher });
    await res.body.dump();
    return true;
  } catch {
    return false;
  } finally {
    await dispatcher.close();
  }
}

export async function waitForGlobalIpv6(iface: string, deps: BootDeps): Promise<void> {
  const read = deps.readNetwork ?? readNetworkNetlink;
  const { ipv6TimeoutMs, ipv6PollMs } = deps.timings;
  const started = Date.now();
  let last: Ipv6Readiness | undefined;
  for (;;) {
    const { links, addresses } = await read();
    const state = ipv6Readiness(iface, links, addresses);
    if (state === 'ready') {
      deps.log.info({ interface: iface }, 'the interface has a global IPv6 address');
      return;
    }
    if (state !== last) {
      deps.log.info({ interface: iface }, state === 'no-interface' ? 'waiting for the interface to appear' : 'waiting for a global IPv6 address');
      last = state;
    }
    if (Date.now() - started >= ipv6TimeoutMs) {
      const what = state === 'no-interface' ? `interface ${iface} does not exist` : `interface ${iface} has no global IPv6 address`;
      throw new BootError(
        `${what} after ${Math.round(ipv6TimeoutMs / 1000)} s; check the network, or [slapformat] ipv6_interface / interface_name`,
      );
    }
    await sleep(ipv6PollMs);
  }
}

export class BootError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BootError';
  }
}

/** Removes <instance_root>/<partition_base_name>*\/.timestamp; returns how many were there. */
export function clearTimestamps(instanceRoot: string, partitionBaseName: string): number {
  let entries: string[];
  try {
    entries = readdirSync(instanceRoot);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  let removed = 0;
  for (const name of entries.filter((e) => e.startsWith(partitionBaseName))) {
    try {
      // The name only, through safe-fs (a link there is removed, never followed).
      if (unlinkBeneath(path.join(instanceRoot, name), '.timestamp')) removed += 1;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ENOTEMPTY') throw error;
    }
  }
  return removed;
}

/** The whole boot sequence; returns the exit status. */
export async function runBoot(deps: BootDeps): Promise<number> {
  const { config, log, timings } = deps;
  const slapos = requireKeys(config, 'slapos', ['computer_id', 'master_url', 'instance_root']);
  const wait = () => sleep(timings.retryDelayMs);
  const iface = bootInterface(config);
  if (iface) await waitForGlobalIpv6(iface, deps);
  else log.warn('neither [slapformat] ipv6_interface nor interface_name is set: not waiting for the network');

  const format = deps.format ?? (() => runFormat(config, { now: true }, log, () => undefined));
  const masterAnswers = deps.masterAnswers ?? (() => probeMaster(config));
  for (let attempt = 1; ; attempt += 1) {
    let status: number;
    try {
      status = await format();
    } catch (error) {
      log.error({ code: 'FORMAT_FAILED', err: error }, 'format failed');
      status = (error as { exitCode?: number }).exitCode ?? Exit.FAILURE;
    }
    const next = afterFormat(status);
    if (next === 'bang') break;
    if (next === 'give-up') return status;
    if (next === 'retry') {
      log.warn({ code: 'FORMAT_RETRY', attempt, status, retry_in_s: timings.retryDelayMs / 1000 }, 'format attempt failed; retrying');
      await wait();
      continue;
    }
    log.warn({ code: 'MASTER_UNREACHABLE', master_url: slapos.master_url }, 'the master did not take the computer report; waiting until it answers');
    do await wait();
    while (!(await masterAnswers()));
    log.info('the master answers again: formatting once more to report the computer');
  }

  const bang = deps.bang ?? (async (message: string) => {
    const client = slapClientFromConfig(config);
    try {
      await client.computerBang(slapos.computer_id, message);
    } finally {
      await client.close();
    }
  });
  for (;;) {
    try {
      await bang('Reboot');
      log.info({ master_url: slapos.master_url, message: 'Reboot' }, 'bang sent');
      break;
    } catch (error) {
      log.warn({ code: 'BANG_FAILED', err: error, retry_in_s: timings.retryDelayMs / 1000 }, 'bang failed; retrying');
      await wait();
    }
  }
  // The kernel forgot every nftables rule: the managers' and [firewall]'s come back before any partition runs (docs/managers.md).
  const { createManagers } = await import('../managers/create.js');
  const managers = await createManagers(config, log);
  if (managers) {
    try {
      const count = await managers.boot();
      log.info({ partitions: count }, 'managers: nftables rules applied again');
    } catch (error) {
      log.error({ code: 'MANAGERS_BOOT_FAILED', err: error }, 'managers: rules not applied again');
    }
  }
  const removed = clearTimestamps(slapos.instance_root, config.slapformat.partition_base_name);
  log.info({ timestamps_cleared: removed }, 'boot done: partition timestamps cleared, every partition will be processed again');
  return Exit.SUCCESS;
}
