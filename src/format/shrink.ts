// Shrinking partition_amount must not lose anything on the master: a
// surplus partition the master lists as busy (an instance is allocated to
// it, destroyed-but-not-yet-reported included) is not removed, even when its
// directory is empty; the refusal names each one and why. The master is
// asked only when there is something to remove.
import type { Computer } from '../slap/shapes.js';

export type MasterPartitions = { busy: ReadonlySet<string> } | { error: string };

/** Partitions the master considers in use: a software release is allocated to them (pure). */
export function busyPartitions(computer: Computer): Set<string> {
  return new Set(computer.partitions.filter((p) => (p.softwareRelease?.url ?? '') !== '').map((p) => p.partitionId));
}

/**
 * Why the surplus partitions `surplus` (references) cannot be removed, or
 * undefined when they can (pure). Without an answer from the master, removal
 * is refused unless `allowOffline` (the operator's --allow-offline-shrink).
 */
export function shrinkRefusal(surplus: readonly string[], amount: number, master: MasterPartitions, allowOffline: boolean): string | undefined {
  if (surplus.length === 0) return undefined;
  if ('error' in master) {
    if (allowOffline) return undefined;
    return `cannot reduce partition_amount to ${amount}: the master could not say whether ${surplus.join(', ')} are in use (${master.error}); ` +
      'removing a partition the master allocated loses its instance there. Retry when the master answers, or pass --allow-offline-shrink';
  }
  const busy = surplus.filter((ref) => master.busy.has(ref));
  if (busy.length === 0) return undefined;
  return `cannot reduce partition_amount to ${amount}: the master lists ${busy.join(', ')} as busy (an instance is allocated to ${busy.length === 1 ? 'it' : 'each'}; ` +
    'removing it would make the instance vanish from the master); destroy those instances first (and let slapos node report finish), or raise partition_amount';
}

/** Asks the master for the computer's partitions; an error is kept as the answer. */
export async function askMaster(getComputer: () => Promise<Computer>): Promise<MasterPartitions> {
  try {
    return { busy: busyPartitions(await getComputer()) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}
