// What one request may make the master decode, store and serve, and the
// connection timeouts. The numbers are measured against the largest
// legitimate documents (docs/master.md, "Limits"); everything past them is a
// 4xx before anything is stored.
import type { XmlLimits } from '../slap/xml-tree.js';
import { DEFAULT_XML_LIMITS } from '../slap/xml-tree.js';

/** Request bodies (default; `bodyLimit` overrides). A formatted computer of 1,000 partitions is ~0.7 MiB. */
export const DEFAULT_BODY_LIMIT = 8 * 1024 * 1024;

/**
 * Marshalled fields of a request (format, parameters, connection parameters,
 * filter): at most 100,000 values, expanded through `<reference>` ids
 * included (a 300-partition format is ~7,300), 8 MiB of text, 64 levels.
 * These also bound the rows one format writes: an address costs 5 values, so
 * at most 20,000 network rows per request.
 */
export const REQUEST_XML_LIMITS: XmlLimits = { maxBytes: DEFAULT_BODY_LIMIT, maxDepth: 64, maxElements: 100_000 };

/**
 * What nodes accept: a node reads getFullComputerInformation with the
 * default XML limits (16 MiB, 500,000 elements). A write that would make a
 * computer's answer larger is refused (413), so every computer stays servable.
 */
export const ANSWER_LIMITS: XmlLimits = DEFAULT_XML_LIMITS;

/** One stored parameter or connection document (instance XML) of one instance. */
export const MAX_STORED_XML = 2 * 1024 * 1024;

/** Nesting of JSON bodies (the JSON API): deeper is 400 before parsing. */
export const MAX_JSON_DEPTH = 64;

/**
 * Connection timeouts (ms). Slow headers, a slow or stalled body and idle
 * keep-alive connections each release the socket; Node checks them every
 * `checkInterval` ms.
 */
export interface MasterTimeouts {
  /** Whole request head received within (slowloris). */
  headers: number;
  /** Whole request, head and body, received within. */
  request: number;
  /** No byte in either direction for this long closes the socket. */
  idle: number;
  /** An idle keep-alive connection between two requests is closed after. */
  keepAlive: number;
  /** TLS handshake finished within. */
  handshake: number;
  /** How often Node checks the header and request timeouts. */
  checkInterval: number;
}

export const DEFAULT_TIMEOUTS: MasterTimeouts = {
  headers: 10_000, request: 60_000, idle: 60_000, keepAlive: 5_000, handshake: 10_000, checkInterval: 1_000,
};

/**
 * True when `text` (JSON) nests arrays/objects deeper than `max`. A linear
 * scan, without parsing: strings are skipped, escapes included.
 */
export function jsonTooDeep(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i += 1; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      depth += 1;
      if (depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth -= 1;
    }
  }
  return false;
}
