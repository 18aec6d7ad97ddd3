// The watchdog: a supervisord event listener that bangs a partition when
// one of its watched services (`etc/service` → process name `*-on-watch`)
// exits or goes FATAL (slapgrid.md §7.3). Protocol: we write READY, read a
// header line and `len` bytes of payload, handle it, write `RESULT 2\nOK`.
import { readTextBeneath } from '../safe-fs/index.js';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { writeOwnedAtomic } from './state.js';

export const READY = 'READY\n';
export const RESULT_OK = 'RESULT 2\nOK';
export const BANG_TIMESTAMP_FILE = '.slapos_latest_bang_timestamp';

export interface ListenerEvent {
  headers: Record<string, string>;
  payload: Record<string, string>;
}

/** `key:value key:value` → record (supervisord's header and payload first line). */
export function parseTokens(line: string): Record<string, string> {
  const record: Record<string, string> = {};
  for (const token of line.trim().split(/\s+/)) {
    const colon = token.indexOf(':');
    if (colon > 0) record[token.slice(0, colon)] = token.slice(colon + 1);
  }
  return record;
}

/** Incremental parser of supervisord's event stream (bytes may come in any pieces). */
export class EventStreamParser {
  private buffer = Buffer.alloc(0);
  private header: Record<string, string> | undefined;

  /** Feeds bytes; returns the events now complete. */
  push(chunk: Buffer): ListenerEvent[] {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const events: ListenerEvent[] = [];
    for (;;) {
      if (!this.header) {
        const newline = this.buffer.indexOf(0x0a);
        if (newline < 0) break;
        this.header = parseTokens(this.buffer.subarray(0, newline).toString('utf8'));
        this.buffer = this.buffer.subarray(newline + 1);
      }
      const length = Number(this.header.len ?? '0');
      if (this.buffer.length < length) break;
      const body = this.buffer.subarray(0, length).toString('utf8');
      this.buffer = this.buffer.subarray(length);
      // PROCESS_STATE payloads are one line of tokens (some events add data after a newline).
      events.push({ headers: this.header, payload: parseTokens(body.split('\n')[0] ?? '') });
      this.header = undefined;
    }
    return events;
  }
}

export type WatchdogDecision =
  | { bang: true; partition: string; message: string }
  | { bang: false; reason: string };

const WATCHED_EVENTS = new Set(['PROCESS_STATE_EXITED', 'PROCESS_STATE_FATAL']);

/**
 * Pure: whether an event bangs. `bangFile` is the content of
 * `<partition>/.slapos_latest_bang_timestamp` (undefined: absent),
 * `timestamp` that of `<partition>/.timestamp`. No bang file → bang; bang
 * file without .timestamp → the partition was not deployed since the last
 * bang → no; else bang iff .timestamp is newer. Timestamps are compared as
 * numbers (floats allowed: the reference's int() fails on slapproxy's).
 */
export function decideBang(event: ListenerEvent, bangFile: string | undefined, timestamp: string | undefined): WatchdogDecision {
  const eventName = event.headers.eventname ?? '';
  const processName = event.payload.processname ?? '';
  const group = event.payload.groupname ?? '';
  if (!WATCHED_EVENTS.has(eventName)) return { bang: false, reason: `event ${eventName} is not watched` };
  if (!processName.includes('-on-watch')) return { bang: false, reason: `${processName} is not a watched service` };
  if (group === '' || group.includes('/') || group.startsWith('.')) return { bang: false, reason: `bad group name ${JSON.stringify(group)}` };
  const message = `${processName} process in partition ${group} encountered a problem`;
  if (bangFile === undefined) return { bang: true, partition: group, message };
  if (timestamp === undefined) return { bang: false, reason: `partition ${group} was not deployed since its last bang` };
  const deployed = Number.parseFloat(timestamp.trim());
  const banged = Number.parseFloat(bangFile.trim());
  if (Number.isNaN(deployed)) return { bang: false, reason: `partition ${group}: unreadable .timestamp ${JSON.stringify(timestamp.trim())}` };
  if (Number.isNaN(banged) || deployed > banged) return { bang: true, partition: group, message };
  return { bang: false, reason: `partition ${group} already banged for timestamp ${timestamp.trim()}` };
}

/** A partition file through safe-fs (no link, no FIFO: the watchdog must never block); undefined when absent or refused. */
function readOptional(partitionDir: string, name: string): string | undefined {
  try {
    return readTextBeneath(partitionDir, name, { maxBytes: 4096 });
  } catch {
    return undefined;
  }
}

export interface WatchdogOptions {
  instanceRoot: string;
  bang: (partitionId: string, message: string) => Promise<void>;
  log: Logger;
}

/** Handles one event: decide, bang, then remember the deployed timestamp so it bangs once. */
export async function handleEvent(event: ListenerEvent, options: WatchdogOptions): Promise<WatchdogDecision> {
  const group = event.payload.groupname ?? '';
  const dir = path.join(options.instanceRoot, group);
  const bangPath = path.join(dir, BANG_TIMESTAMP_FILE);
  const safeGroup = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(group);
  const timestamp = safeGroup ? readOptional(dir, '.timestamp') : undefined;
  const decision = decideBang(event, safeGroup ? readOptional(dir, BANG_TIMESTAMP_FILE) : undefined, timestamp);
  if (!decision.bang) {
    options.log.debug({ reason: decision.reason }, 'watchdog: no bang');
    return decision;
  }
  await options.bang(decision.partition, decision.message);
  options.log.info({ partition: decision.partition, message: decision.message }, 'watchdog: banged');
  writeOwnedAtomic(bangPath, (timestamp ?? '0').trim(), { uid: 0, gid: 0 }, 0o644, dir);
  return decision;
}

/**
 * The listener loop on the given streams (supervisord's stdin/stdout).
 * stdout carries only the protocol; logs go elsewhere. A failing bang is
 * logged and the event acknowledged anyway: supervisord would otherwise
 * resend it forever, and the bang file is only written after a success.
 */
export async function runWatchdog(input: NodeJS.ReadableStream, output: NodeJS.WritableStream, options: WatchdogOptions): Promise<void> {
  const parser = new EventStreamParser();
  output.write(READY);
  for await (const chunk of input) {
    for (const event of parser.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string))) {
      try {
        await handleEvent(event, options);
      } catch (error) {
        options.log.error({ code: 'WATCHDOG_EVENT_FAILED', process: event.payload.processname ?? '?', group: event.payload.groupname ?? '?', err: error }, 'watchdog: event failed');
      }
      output.write(RESULT_OK);
      output.write(READY);
    }
  }
}
