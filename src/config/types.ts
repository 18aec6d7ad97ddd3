// Value types of slapos.cfg keys, as zod schemas over the raw INI strings.
// Each gives a message that makes sense after "[section] key: ".
import * as z from '../vendor/zod-mini.js';
import path from 'node:path';

/** Booleans: like the reference, only `true` / `false` (any case). */
export const bool = z.pipe(z.string(), z.transform((value, ctx) => {
  const lower = value.trim().toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  ctx.issues.push({ code: 'custom', message: `must be true or false, got ${JSON.stringify(value)}`, input: value });
  return z.NEVER;
}));

export const int = (min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.pipe(z.string(), z.transform((value, ctx) => {
    const text = value.trim();
    if (!/^-?\d+$/.test(text)) {
      ctx.issues.push({ code: 'custom', message: `must be a whole number, got ${JSON.stringify(value)}`, input: value });
      return z.NEVER;
    }
    const n = Number(text);
    if (n < min || n > max) {
      ctx.issues.push({ code: 'custom', message: `must be between ${min} and ${max}, got ${n}`, input: value });
      return z.NEVER;
    }
    return n;
  }));

export const absolutePath = z.pipe(z.string(), z.transform((value, ctx) => {
  const text = value.trim();
  if (!path.isAbsolute(text)) {
    ctx.issues.push({ code: 'custom', message: `must be an absolute path, got ${JSON.stringify(value)}`, input: value });
    return z.NEVER;
  }
  return path.normalize(text);
}));

/** A path; relative paths are resolved against the current directory (as the reference does for computer_xml). */
export const anyPath = z.pipe(z.string(), z.transform((value) => path.resolve(value.trim())));

export const nonEmpty = z.pipe(z.string(), z.transform((value, ctx) => {
  const text = value.trim();
  if (text === '') {
    ctx.issues.push({ code: 'custom', message: 'must not be empty', input: value });
    return z.NEVER;
  }
  return text;
}));

/** A name usable as a prefix of user, group, partition and interface names. */
export const baseName = z.pipe(z.string(), z.transform((value, ctx) => {
  const text = value.trim();
  if (!/^[a-z_][a-z0-9_-]{0,23}$/.test(text)) {
    ctx.issues.push({
      code: 'custom',
      message: `must start with a lower-case letter or "_" and hold at most 24 of [a-z0-9_-], got ${JSON.stringify(value)}`,
      input: value,
    });
    return z.NEVER;
  }
  return text;
}));

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15,
  kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, pb: 1e15,
  ki: 2 ** 10, mi: 2 ** 20, gi: 2 ** 30, ti: 2 ** 40, pi: 2 ** 50,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40, pib: 2 ** 50,
};

/** Parses "1000M", "2Gi", "512KB", "42" into bytes (the reference's human2bytes). */
export function parseBytes(text: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!match) return undefined;
  const factor = UNITS[(match[2] ?? '').toLowerCase()];
  if (factor === undefined) return undefined;
  return Math.round(Number(match[1]) * factor);
}

export const bytes = z.pipe(z.string(), z.transform((value, ctx) => {
  const n = parseBytes(value);
  if (n === undefined) {
    ctx.issues.push({ code: 'custom', message: `must be a size such as 1000M, 2Gi or 512KB, got ${JSON.stringify(value)}`, input: value });
    return z.NEVER;
  }
  return n;
}));

/** Newline-separated list (the reference's multi-line keys); blank lines dropped. */
export const lines = z.pipe(z.string(), z.transform((value) =>
  value
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== ''),
));

/** Space- or comma-separated words (manager_list). */
export const words = z.pipe(z.string(), z.transform((value) => value.split(/[\s,]+/).filter((w) => w !== '')));

export const url = z.pipe(z.string(), z.transform((value, ctx) => {
  const text = value.trim();
  try {
    const parsed = new URL(text);
    if (!['http:', 'https:'].includes(parsed.protocol)) throw new Error('protocol');
    return text;
  } catch {
    ctx.issues.push({ code: 'custom', message: `must be an http:// or https:// URL, got ${JSON.stringify(value)}`, input: value });
    return z.NEVER;
  }
}));

/** master_url: an http(s) URL, or the master's unix socket as unix:/path (or http+unix://%2F…/; src/slap/master-url.ts). */
export const masterUrl = z.pipe(z.string(), z.transform((value, ctx) => {
  const text = value.trim();
  try {
    const parsed = new URL(text);
    if (!['http:', 'https:', 'http+unix:', 'unix:'].includes(parsed.protocol)) throw new Error('protocol');
    if (parsed.protocol === 'http+unix:' && !decodeURIComponent(parsed.hostname).startsWith('/')) throw new Error('socket');
    if (parsed.protocol === 'unix:' && !/^\/./.test(parsed.pathname)) throw new Error('socket');
    return text;
  } catch {
    ctx.issues.push({ code: 'custom', message: `must be an http:// or https:// URL, or unix:/path/to/master.sock, got ${JSON.stringify(value)}`, input: value });
    return z.NEVER;
  }
}));

export const cidr4 = z.pipe(z.string(), z.transform((value, ctx) => {
  const text = value.trim();
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text);
  const octets = match ? match.slice(1, 5).map(Number) : [];
  const prefix = match ? Number(match[5]) : -1;
  if (!match || octets.some((o) => o > 255) || prefix > 32) {
    ctx.issues.push({ code: 'custom', message: `must be an IPv4 network such as 10.0.0.0/16, got ${JSON.stringify(value)}`, input: value });
    return z.NEVER;
  }
  return text;
}));

export const oneOf = <T extends string>(...choices: [T, ...T[]]) =>
  z.pipe(z.string(), z.transform((value, ctx) => {
    const text = value.trim().toLowerCase();
    if (!(choices as string[]).includes(text)) {
      ctx.issues.push({ code: 'custom', message: `must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`, input: value });
      return z.NEVER;
    }
    return text as T;
  }));
