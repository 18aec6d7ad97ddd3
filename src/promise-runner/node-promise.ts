// `slapos node promise [--only-cp a,b]`: the promises of every started
// partition, test mode (forced), nothing reported to the master; exit 2 when
// one fails (slapgrid.md §6.1 d). Unlike the reference we do not ask the
// master which partitions are started: the instance loop's supervisord group
// file says so locally (discover.ts isStartedLocally), so this works offline.
import type { Logger } from '../util/log.js';
import { isStartedLocally, listPartitionIds, listPromises, partitionRef } from './discover.js';
import type { PluginSettings } from './plugin.js';
import { runPartitionPromises } from './runner.js';
import type { PartitionPromisesResult } from './types.js';

export interface NodePromiseOptions {
  instanceRoot: string;
  partitionBaseName: string;
  /** supervisord.conf.d of the node. */
  includeDir: string;
  timeout: number;
  /** --only-cp ids, or undefined for all. */
  onlyCp: string[] | undefined;
  log: Logger;
  /** Handed to Python plugin promises. */
  plugin?: PluginSettings | undefined;
  /** Where a partition's software_release link must point for its bin/buildout to name the plugins' Python. */
  softwareRoot?: string | undefined;
}

export interface NodePromiseSummary {
  checked: PartitionPromisesResult[];
  /** Partitions not started (by the local state) or without promises. */
  ignored: { id: string; why: string }[];
  /** Partitions whose promises could not run at all. */
  errors: { id: string; error: string }[];
}

/** Pure: --only-cp value → ids (the reference does not trim; we do). */
export function parseOnlyCp(value: unknown): string[] | undefined {
  if (typeof value !== 'string') return undefined;
  const ids = value.split(',').map((id) => id.trim()).filter((id) => id !== '');
  return ids.length > 0 ? ids : undefined;
}

/** Pure: the exit status of `node promise` (0 kept, 2 a promise failed, 1 a partition could not be checked). */
export function nodePromiseExit(summary: NodePromiseSummary): number {
  if (summary.errors.length > 0) return 1;
  return summary.checked.some((result) => result.failed.length > 0) ? 2 : 0;
}

export async function runNodePromises(options: NodePromiseOptions): Promise<NodePromiseSummary> {
  const { log } = options;
  const all = listPartitionIds(options.instanceRoot, options.partitionBaseName);
  if (options.onlyCp) {
    const unknown = options.onlyCp.filter((id) => !all.includes(id)).sort();
    if (unknown.length > 0) throw new Error(`Unknown partition${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')} (no such directory in ${options.instanceRoot})`);
  }
  const summary: NodePromiseSummary = { checked: [], ignored: [], errors: [] };
  for (const id of options.onlyCp ?? all) {
    if (!isStartedLocally(options.includeDir, id)) {
      summary.ignored.push({ id, why: 'not started' });
      continue;
    }
    try {
      const partition = partitionRef(options.instanceRoot, id);
      if (listPromises(partition.path).promises.length === 0) {
        summary.ignored.push({ id, why: 'no promises' });
        continue;
      }
      const result = await runPartitionPromises(partition, {
        mode: 'test', timeout: options.timeout, log, plugin: options.plugin, softwareRoot: options.softwareRoot,
      });
      summary.checked.push(result);
      if (result.error) log.error({ code: 'PROMISE_FAILED', partition: id, error: result.error }, 'promises failed');
    } catch (error) {
      summary.errors.push({ id, error: (error as Error).message });
      log.error({ partition: id, err: error }, (error as Error).message);
    }
  }
  return summary;
}
