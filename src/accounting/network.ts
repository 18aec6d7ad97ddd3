// Tap counters from sysfs (/sys/class/net/<tap>/statistics/*), read for every
// partition in the same single native call as the cgroup files. sysfs shows the
// devices of the reader's network namespace; `netRoot` lets tests point at a
// sysfs mounted from a test namespace.
//
// From the host's side of a tap, rx is what the partition (the process or VM
// holding the tap open) sent, and tx is what the host or bridge delivered to
// it. A bridged tap counts all of the partition's traffic; a tap nobody has
// opened has no carrier and counts nothing (frames sent to it are dropped).
import path from 'node:path';

export const NET_COUNTERS = ['rx_bytes', 'tx_bytes', 'rx_packets', 'tx_packets'] as const;
export type NetCounter = (typeof NET_COUNTERS)[number];
export type NetUsage = Record<NetCounter, number | null>;

export const SYS_CLASS_NET = '/sys/class/net';

/** Device names are at most 15 bytes without '/' (IFNAMSIZ); anything else is not read. */
const DEVICE = /^[^/\s]{1,15}$/;

export function netCounterFiles(tap: string | null, netRoot = SYS_CLASS_NET): string[] {
  if (tap === null || !DEVICE.test(tap) || tap === '.' || tap === '..') return [];
  return NET_COUNTERS.map((c) => path.join(netRoot, tap, 'statistics', c));
}

export function netUsageFromContents(contents: readonly (string | null)[]): NetUsage {
  const usage: NetUsage = { rx_bytes: null, tx_bytes: null, rx_packets: null, tx_packets: null };
  NET_COUNTERS.forEach((counter, i) => {
    const text = contents[i];
    if (text === null || text === undefined) return;
    const value = Number(text.trim());
    if (Number.isFinite(value)) usage[counter] = value;
  });
  return usage;
}
