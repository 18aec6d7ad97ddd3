// Usage counters of a group: which files to read on each layout and how to
// parse them. Pure (the reads happen in group.ts in one native call).
import path from 'node:path';
import type { CgroupLayout, V1Controller } from './layout.js';

export interface CgroupUsage {
  /** CPU time consumed, microseconds. */
  cpuUsec: number | null;
  memoryBytes: number | null;
  /** Highest memory use seen (v2 memory.peak needs Linux ≥ 5.19). */
  memoryPeakBytes: number | null;
  ioReadBytes: number | null;
  ioWriteBytes: number | null;
  pids: number | null;
}

type Counter = keyof CgroupUsage;

interface Source {
  counter: Counter;
  file: string;
  parse: (text: string) => number | Partial<CgroupUsage> | null;
}

const integer = (text: string): number | null => {
  const value = Number(text.trim());
  return Number.isFinite(value) ? value : null;
};

/** "key value" lines (cpu.stat, memory.stat). */
export function keyedValues(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && Number.isFinite(Number(value))) out.set(key, Number(value));
  }
  return out;
}

/** v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 …" per device, summed. */
export function parseIoStatV2(text: string): Partial<CgroupUsage> {
  let read = 0;
  let write = 0;
  for (const match of text.matchAll(/\b(rbytes|wbytes)=(\d+)/g)) {
    if (match[1] === 'rbytes') read += Number(match[2]);
    else write += Number(match[2]);
  }
  return { ioReadBytes: read, ioWriteBytes: write };
}

/** v1 blkio.throttle.io_service_bytes: "8:0 Read 123" lines, summed over devices. */
export function parseBlkioV1(text: string): Partial<CgroupUsage> {
  let read = 0;
  let write = 0;
  for (const line of text.split('\n')) {
    const [device, op, value] = line.trim().split(/\s+/);
    if (!device || !device.includes(':') || value === undefined) continue;
    if (op === 'Read') read += Number(value);
    else if (op === 'Write') write += Number(value);
  }
  return { ioReadBytes: read, ioWriteBytes: write };
}

/** The files to read for one group, with how each contributes to CgroupUsage. */
export function usageSources(layout: CgroupLayout, relative: string): { file: string; parse: Source['parse']; counter: Counter }[] {
  if (layout.kind === 'unified') {
    const dir = path.join(layout.root, relative);
    return [
      { counter: 'cpuUsec', file: path.join(dir, 'cpu.stat'), parse: (t) => keyedValues(t).get('usage_usec') ?? null },
      { counter: 'memoryBytes', file: path.join(dir, 'memory.current'), parse: integer },
      { counter: 'memoryPeakBytes', file: path.join(dir, 'memory.peak'), parse: integer },
      { counter: 'ioReadBytes', file: path.join(dir, 'io.stat'), parse: parseIoStatV2 },
      { counter: 'pids', file: path.join(dir, 'pids.current'), parse: integer },
    ];
  }
  const at = (controller: V1Controller, file: string) => {
    const mount = layout.mounts.get(controller);
    return mount ? path.join(mount, relative, file) : undefined;
  };
  const list: { file: string | undefined; parse: Source['parse']; counter: Counter }[] = [
    // cpuacct.usage is in nanoseconds.
    { counter: 'cpuUsec', file: at('cpuacct', 'cpuacct.usage'), parse: (t) => { const ns = integer(t); return ns === null ? null : Math.floor(ns / 1000); } },
    { counter: 'memoryBytes', file: at('memory', 'memory.usage_in_bytes'), parse: integer },
    { counter: 'memoryPeakBytes', file: at('memory', 'memory.max_usage_in_bytes'), parse: integer },
    { counter: 'ioReadBytes', file: at('blkio', 'blkio.throttle.io_service_bytes'), parse: parseBlkioV1 },
    { counter: 'pids', file: at('pids', 'pids.current'), parse: integer },
  ];
  return list.filter((s): s is { file: string; parse: Source['parse']; counter: Counter } => s.file !== undefined);
}

/** Combines file contents (null = file absent) into a usage record. */
export function usageFromContents(
  list: readonly { parse: Source['parse']; counter: Counter }[],
  contents: readonly (string | null)[],
): CgroupUsage {
  const usage: CgroupUsage = {
    cpuUsec: null, memoryBytes: null, memoryPeakBytes: null, ioReadBytes: null, ioWriteBytes: null, pids: null,
  };
  list.forEach((source, i) => {
    const text = contents[i];
    if (text === null || text === undefined) return;
    const parsed = source.parse(text);
    if (parsed === null) return;
    if (typeof parsed === 'number') usage[source.counter] = parsed;
    else Object.assign(usage, parsed);
  });
  return usage;
}
