// Filling the master-scale benchmark's database: N computers × P partitions,
// a fraction allocated. One description of the fleet (computerConfig,
// partitionPatch) feeds two writers:
// - populate(): through the store, as `node format` (loadComputerConfiguration)
//   and allocation leave it — one statement per row, the reference path;
// - bulkFill(): the same rows as multi-row INSERTs in large transactions —
//   PostgreSQL through the store costs one round trip per statement (279 s for
//   1,000 computers under load). pg-copy-streams (COPY FROM STDIN) is not a
//   dependency; multi-row INSERTs need none and stay within a few times COPY.
// test/unit/master-scale-fill.test.ts checks that both leave identical tables.
import { dictToInstanceXml } from '../src/slap/instance-xml.js';
import { loadComputer, nextTimestamp } from '../src/master/node-ops.js';
import type { PartitionPatch, Store } from '../src/master/store.js';
import type { PyValue } from '../src/slap/pyvalue.js';
import { busyCount, SOFTWARE_URL } from './master-scale-plan.js';

export interface Fleet {
  partitions: number;
  /** Fraction of partitions allocated. */
  busy: number;
}

/** What `node format` sends for computer c (loadComputerConfigurationFromXML). */
export function computerConfig(c: number, partitions: number) {
  const net = `${(c >> 8) & 255}.${c & 255}`;
  return {
    reference: `COMP-${c}`, address: `10.${net}.1`, netmask: '255.255.255.0',
    partition_list: Array.from({ length: partitions }, (_, p) => ({
      reference: `slappart${p}`, tap: { name: `slaptap${p}` },
      address_list: [{ addr: `10.${net}.${p + 2}`, netmask: '255.255.255.0' }, { addr: `fd00::${c.toString(16)}:${p.toString(16)}`, netmask: 'ffff:ffff:ffff:ffff::' }],
    })),
  };
}

/** The allocation of partition p of computer c (instance inst-c-p, requested by inst-c-0). */
export function partitionPatch(c: number, p: number, timestamp: number) {
  return {
    slap_state: 'busy', software_release: SOFTWARE_URL, software_type: 'default', partition_reference: `inst-${c}-${p}`,
    requested_by: p === 0 ? '' : `inst-${c}-0`, requested_state: 'started', timestamp,
    xml: dictToInstanceXml({ 'frontend-url': `https://f${p}.example.com`, 'ram-size': '2048' }),
  } satisfies PartitionPatch;
}

/** Adds computers [from, to) through the store, 25 per transaction. */
export async function populate(store: Store, from: number, to: number, fleet: Fleet): Promise<void> {
  const allocated = busyCount(fleet);
  for (let start = from; start < to; start += 25) {
    await store.transaction(async (tx) => {
      for (let c = start; c < Math.min(to, start + 25); c++) {
        const id = `COMP-${c}`;
        await loadComputer(tx, computerConfig(c, fleet.partitions) as unknown as PyValue);
        await tx.upsertSoftware(SOFTWARE_URL, id, 'available');
        for (let p = 0; p < allocated; p++) await tx.updatePartition(id, `slappart${p}`, partitionPatch(c, p, nextTimestamp(null)));
      }
    });
  }
}

const PARTITION_COLUMNS = ['reference', 'computer_reference', 'slap_state', 'software_release', 'software_type',
  'partition_reference', 'requested_by', 'requested_state', '"timestamp"', 'xml'] as const;

/** Table → column list and rows, in the order the store writes them. */
export interface Rows {
  computer: unknown[][];
  computer_partition: unknown[][];
  partition_network: unknown[][];
  software: unknown[][];
}

export const COLUMNS: Record<keyof Rows, readonly string[]> = {
  // generation 1: populate() touches each computer in one transaction, bumped once at commit.
  computer: ['reference', 'address', 'netmask', 'generation'],
  computer_partition: PARTITION_COLUMNS,
  partition_network: ['partition_reference', 'computer_reference', 'reference', 'address', 'netmask'],
  software: ['url', 'computer_reference', 'requested_state'],
};

/** The rows populate() leaves for computers [from, to) (as loadComputer maps the configuration). */
export function fleetRows(from: number, to: number, fleet: Fleet, timestamp: () => number): Rows {
  const rows: Rows = { computer: [], computer_partition: [], partition_network: [], software: [] };
  const allocated = busyCount(fleet);
  for (let c = from; c < to; c++) {
    const config = computerConfig(c, fleet.partitions);
    const id = config.reference;
    rows.computer.push([id, config.address, config.netmask, 1]);
    config.partition_list.forEach((p, i) => {
      if (i < allocated) {
        const patch = partitionPatch(c, i, timestamp());
        rows.computer_partition.push([p.reference, id, patch.slap_state, patch.software_release, patch.software_type,
          patch.partition_reference, patch.requested_by, patch.requested_state, patch.timestamp, patch.xml]);
      } else {
        rows.computer_partition.push([p.reference, id, 'free', null, null, null, '', 'started', null, null]);
      }
      for (const a of p.address_list) rows.partition_network.push([p.reference, id, p.tap.name || p.reference, a.addr, a.netmask]);
    });
    rows.software.push([SOFTWARE_URL, id, 'available']);
  }
  return rows;
}

/** Runs one statement with `?` placeholders (the engine converts them). */
export type Exec = (sql: string, params: unknown[]) => Promise<void>;

/** Parameters per statement: below SQLite's 32,766 and PostgreSQL's 65,535. */
const MAX_PARAMS = 30_000;

/**
 * Inserts computers [from, to) as multi-row INSERTs, `perTransaction`
 * computers per BEGIN … COMMIT; `progress` after each transaction.
 */
export async function bulkFill(exec: Exec, from: number, to: number, fleet: Fleet,
  { perTransaction = 500, progress }: { perTransaction?: number; progress?: (done: number) => void } = {}): Promise<void> {
  for (let start = from; start < to; start += perTransaction) {
    const end = Math.min(to, start + perTransaction);
    const rows = fleetRows(start, end, fleet, () => nextTimestamp(null));
    await exec('BEGIN', []);
    try {
      for (const table of ['computer', 'computer_partition', 'partition_network', 'software'] as const) {
        const columns = COLUMNS[table];
        const chunk = Math.floor(MAX_PARAMS / columns.length);
        for (let i = 0; i < rows[table].length; i += chunk) {
          const part = rows[table].slice(i, i + chunk);
          const tuple = `(${columns.map(() => '?').join(', ')})`;
          await exec(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${part.map(() => tuple).join(', ')}`, part.flat());
        }
      }
      await exec('COMMIT', []);
    } catch (error) {
      await exec('ROLLBACK', []).catch(() => undefined);
      throw error;
    }
    progress?.(end);
  }
}
