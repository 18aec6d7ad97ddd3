// Duplicate address detection, read from the kernel's address flags instead
// of the reference's fixed sleep: wait while the addresses added by this run
// are "tentative", fail for those marked "dadfailed" (another host uses them),
// removing them so a later run can retry.
import { AF_INET6, type LinkState, type Rtnl } from '../network/netlink.js';
import type { Logger } from '../util/log.js';
import { FormatError } from './plan-network.js';

export interface DadPending {
  dev: string;
  address: bigint;
  partition: string;
}

/** Poll interval: short, since one poll is a single IPv6-only address dump. */
const POLL_MS = 50;

/**
 * Returns once no pending address is tentative. On a link without carrier DAD
 * cannot run, and past the timeout we stop waiting: both warn, and the next
 * run checks the flags again.
 */
export async function checkDad(rtnl: Rtnl, pending: readonly DadPending[], timeoutMs: number, log: Logger): Promise<void> {
  if (pending.length === 0) return;
  const links = new Map<string, LinkState>((await rtnl.links()).map((l) => [l.name, l]));
  const key = (index: number, address: bigint) => `${index}/${address}`;
  const deadline = Date.now() + timeoutMs;
  let waiting = [...pending];
  for (;;) {
    const addresses = new Map((await rtnl.addresses(AF_INET6)).map((a) => [key(a.index, a.value as bigint), a]));
    const state = waiting.map((p) => ({ p, a: addresses.get(key(links.get(p.dev)?.index ?? -1, p.address)) }));
    const failed = state.filter((s) => s.a?.dadfailed);
    if (failed.length > 0) {
      for (const { p, a } of failed) {
        try {
          await rtnl.delAddress(a?.index ?? 0, { family: AF_INET6, value: p.address }, a?.prefixlen ?? 64);
        } catch {
          // already gone
        }
      }
      throw new FormatError(
        `duplicate address detection failed (the address is used elsewhere on the network) for ${failed
          .map(({ p }) => `${p.partition} (${p.dev})`).join(', ')}; free these addresses or change the prefix, then re-run`,
      );
    }
    // Addresses that left the tentative state are settled: poll only the rest.
    waiting = state.filter((s) => s.a?.tentative).map((s) => s.p);
    if (waiting.length === 0) return;
    if (waiting.every((p) => !links.get(p.dev)?.lowerUp)) {
      log.warn({ code: 'DAD_NO_CARRIER', tentative: waiting.length, interface: waiting[0]?.dev }, 'new IPv6 addresses stay tentative: the interface has no carrier, so duplicate detection cannot run yet; the next format run checks them');
      return;
    }
    if (Date.now() > deadline) {
      log.warn({ code: 'DAD_TIMEOUT', tentative: waiting.length, timeout_ms: timeoutMs }, 'new IPv6 addresses are still tentative; the next format run checks them');
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
