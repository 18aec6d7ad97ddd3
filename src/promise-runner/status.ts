// Last promise results of every partition, for `slapos node status`.
import { readdirSync } from 'node:fs';
import { listPartitionIds } from './discover.js';
import { promiseDirs, readStatus } from './state.js';

export interface PromiseStatusLine {
  title: string;
  name: string;
  failed: boolean;
  type: string;
  date: string;
  message: string;
}

/** partition id → its stored results (partitions without any are left out). */
export function readPromiseStatus(instanceRoot: string, partitionBaseName: string): Record<string, PromiseStatusLine[]> {
  const status: Record<string, PromiseStatusLine[]> = {};
  let ids: string[];
  try {
    ids = listPartitionIds(instanceRoot, partitionBaseName);
  } catch {
    return status;
  }
  for (const id of ids) {
    const dirs = promiseDirs(`${instanceRoot}/${id}`);
    let files: string[];
    try {
      files = readdirSync(dirs.result).filter((name) => name.endsWith('.status.json')).sort();
    } catch {
      continue;
    }
    const lines = files.flatMap((file) => {
      const result = readStatus(dirs, file.slice(0, -'.status.json'.length));
      if (!result) return [];
      const { title, name, result: r } = result;
      return [{ title, name, failed: Boolean(r.failed), type: r.type, date: r.date, message: r.message ?? '' }];
    });
    if (lines.length > 0) status[id] = lines;
  }
  return status;
}

/** Text lines for `slapos node status`. */
export function formatPromiseStatus(status: Record<string, PromiseStatusLine[]>): string {
  const ids = Object.keys(status);
  if (ids.length === 0) return 'promises: no results yet';
  const lines = ['promises:'];
  for (const id of ids) {
    for (const p of status[id] ?? []) {
      const first = p.message.split('\n')[0] ?? '';
      lines.push(`  ${id}/${p.name}  ${p.failed ? 'FAILED' : 'ok'}  ${p.date}${p.failed && first ? `  ${first.slice(0, 120)}` : ''}`);
    }
  }
  return lines.join('\n');
}
