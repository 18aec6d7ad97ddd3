// The files a partition writes to ask a manager for something (managers.md
// §2-§6). The partition user owns them: they are read through safe-fs (no
// link, no FIFO, not a directory) and capped in size; anything else is a
// refusal with a reason, never an exception that would stop other partitions.
import { readBeneath } from '../safe-fs/index.js';

export const REQUEST_FILES = {
  cpuset: '.slapos-cpu-exclusive',
  devperm: '.slapos-disk-permission',
  portredir: '.slapos-port-redirect',
  whitelistfirewall: '.slapos-whitelist-firewall',
} as const;

/** Far above what a real request needs (a few hundred bytes). */
export const REQUEST_MAX_BYTES = 64 * 1024;

export type RequestFile =
  | { kind: 'absent' }
  | { kind: 'refused'; reason: string }
  | { kind: 'present'; text: string; bytes: Buffer };

export function readRequest(partitionDir: string, rel: string, maxBytes = REQUEST_MAX_BYTES): RequestFile {
  let bytes: Buffer | undefined;
  try {
    bytes = readBeneath(partitionDir, rel, { maxBytes });
  } catch (error) {
    return { kind: 'refused', reason: `${rel}: ${(error as Error).message}` };
  }
  if (bytes === undefined) return { kind: 'absent' };
  const text = bytes.toString('utf8');
  if (text.includes('\uFFFD') || text.includes('\0')) return { kind: 'refused', reason: `${rel}: not UTF-8 text; refused` };
  return { kind: 'present', text, bytes };
}

/** The JSON of a request, or a refusal. */
export function parseJsonRequest(rel: string, text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (error) {
    return { ok: false, reason: `${rel}: not JSON (${(error as Error).message}); refused` };
  }
}
