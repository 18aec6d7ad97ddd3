// The managers' point in the instance pass (the reference's instanceTearDown,
// managers.md §1): after each partition that was processed, failed or found
// up to date, while it is not being destroyed. Kept apart from the loop so
// that a node without managers pays nothing.
import { lstatSync } from 'node:fs';
import path from 'node:path';
import type { Managers } from '../managers/index.js';
import { PyTuple } from '../slap/pyvalue.js';
import { appendBeneath } from '../safe-fs/index.js';
import type { ComputerPartition } from '../slap/shapes.js';
import { userByUid } from '../users/user.js';
import type { Logger } from '../util/log.js';

export function ipListOf(partition: ComputerPartition): [string, string][] {
  const params = partition.parameters ?? {};
  const out: [string, string][] = [];
  for (const key of ['ip_list', 'full_ip_list']) {
    const raw = params[key];
    for (const entry of Array.isArray(raw) ? raw : []) {
      const items = entry instanceof PyTuple ? entry.items : Array.isArray(entry) ? entry : [];
      if (typeof items[0] === 'string' && typeof items[1] === 'string') out.push([items[0], items[1]]);
    }
  }
  return out;
}

export async function runManagers(managers: Managers, instanceRoot: string, id: string, full: () => ComputerPartition, log: Logger): Promise<void> {
  const dir = path.join(instanceRoot, id);
  const partitionLog = log.child({ partition: id });
  try {
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.uid === 0) return;
    const entry = userByUid(st.uid);
    const user = { uid: st.uid, gid: st.gid, name: entry?.name ?? String(st.uid), home: entry?.home ?? dir };
    let partition: ComputerPartition | undefined;
    const get = () => (partition ??= full());
    const state = await managers.instance({
      id, dir, user, log: partitionLog,
      ipList: () => ipListOf(get()),
      filter: () => (get().filter ?? null) as Record<string, unknown> | null,
    });
    // Refusals also go to the partition's own log, where its owner looks (through safe-fs: the tree is the partition user's).
    if (state.refused.length > 0) {
      const at = new Date().toISOString();
      const text = state.refused.map((r) => `${at} WARNING ${r.manager}: ${r.reason}\n`).join('');
      try {
        appendBeneath(dir, '.slapgrid/log/instance.log', text, { mode: 0o640 });
      } catch (error) {
        partitionLog.debug({ err: error }, 'instance.log not written');
      }
    }
  } catch (error) {
    partitionLog.error({ code: 'MANAGERS_FAILED', err: error }, 'managers failed');
  }
}
