// Strict checks of values written by partitions (pure). Canonical forms only:
// what passes is safe to put in an nft script as is.
import { format4, format6, parse4, parse6 } from '../network/address.js';

export function isIpv4(text: string): boolean {
  try {
    parse4(text);
    return true;
  } catch {
    return false;
  }
}

/** "a.b.c.d/len" with no host bits set. */
export function isIpv4Network(text: string): boolean {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(text);
  if (!m || !isIpv4(m[1] as string)) return false;
  const len = Number(m[2]);
  if (len > 32) return false;
  const value = parse4(m[1] as string);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((value & ~mask) >>> 0) === 0;
}

/** The canonical text of an IPv4 or IPv6 address, or undefined. */
export function canonicalAddress(text: string): { family: 4 | 6; text: string } | undefined {
  if (typeof text !== 'string' || text.length > 64) return undefined;
  try {
    return { family: 4, text: format4(parse4(text)) };
  } catch { /* not IPv4 */ }
  if (!text.includes(':') || text.includes('%')) return undefined;
  try {
    return { family: 6, text: format6(parse6(text)) };
  } catch {
    return undefined;
  }
}

/** An integer port 1..65535 given as a JSON number or decimal string (the reference applies int()). */
export function portOf(value: unknown): number | undefined {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d{1,5}\s*$/.test(value) ? Number(value) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
