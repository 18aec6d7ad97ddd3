// The state file (computer_xml) form of the computer dict: the shared
// xml_marshaller codec of src/slap, pretty-printed as lxml does when
// slapos.core writes the file (2 spaces, no declaration).
import { dumps } from '../slap/marshal-encode.js';

/** The JSON-like subset of the marshalled values that the computer dict uses. */
export type MarshalValue = string | number | boolean | null | MarshalValue[] | { [key: string]: MarshalValue };
export type Dict = { [key: string]: MarshalValue };

/**
 * lxml's pretty_print of a compact marshalled document. Marshalled XML has no
 * mixed content: an element holds either text (kept on its line) or elements
 * (one per line, indented).
 */
export function prettyXml(compact: string): string {
  const tokens = compact.match(/<[^>]*>|[^<]+/g) ?? [];
  let out = '';
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as string;
    const pad = '  '.repeat(depth);
    if (token.startsWith('</')) {
      depth--;
      out += `${'  '.repeat(depth)}${token}\n`;
    } else if (token.endsWith('/>')) {
      out += `${pad}${token}\n`;
    } else if (!token.startsWith('<')) {
      throw new Error('mixed content in marshalled XML');
    } else {
      const next = tokens[i + 1] ?? '';
      if (!next.startsWith('<')) {
        out += `${pad}${token}${next}${tokens[i + 2] ?? ''}\n`; // <tag>text</tag>
        i += 2;
      } else if (next.startsWith('</')) {
        out += `${pad}${token}${next}\n`; // <string></string>
        i += 1;
      } else {
        out += `${pad}${token}\n`;
        depth++;
      }
    }
  }
  return out;
}

/** A computer dict marshalled: `compact` is what the master receives, `pretty` the state file. */
export interface Marshalled {
  compact: string;
  pretty: string;
}

export function marshalComputer(computer: Dict): Marshalled {
  const compact = dumps(computer);
  return { compact, pretty: prettyXml(compact) };
}

/** The state file text of a computer dict. */
export function dumpsState(computer: Dict): string {
  return marshalComputer(computer).pretty;
}

/** Deep equality of plain values (dict key order does not matter: marshalling sorts keys). */
export function samePlain(a: MarshalValue, b: MarshalValue): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => samePlain(v, b[i] as MarshalValue));
  }
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => k in b && samePlain(a[k] as MarshalValue, b[k] as MarshalValue));
}

export function plain(value: unknown): value is MarshalValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isInteger(value);
  if (Array.isArray(value)) return value.every(plain);
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) return Object.values(value as object).every(plain);
  return false;
}

/**
 * The stored computer dict from computer_json, when that file holds a value
 * that marshals to exactly the state file text: it is then the same value
 * (marshalling is one-to-one on these types), the XML need not be parsed (see
 * state-file.ts), and the marshalled forms are kept for reuse when nothing
 * changes. Undefined otherwise. `recorded`: both texts are known to be a pair
 * format wrote from one dict (report-record.ts): the comparison is skipped,
 * and the compact form is marshalled only if asked for.
 */
export function storedFromJson(xmlText: string, jsonText: string | null, recorded = false): { value: Dict; marshalled: Marshalled } | undefined {
  if (jsonText === null) return undefined;
  try {
    const value: unknown = JSON.parse(jsonText);
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !plain(value)) return undefined;
    if (recorded) return { value: value as Dict, marshalled: knownPretty(value as Dict, xmlText) };
    const marshalled = marshalComputer(value as Dict);
    return marshalled.pretty === xmlText ? { value: value as Dict, marshalled } : undefined;
  } catch {
    return undefined; // not JSON: read the XML
  }
}

/** The marshalled forms of a dict whose state file text is known: the compact one is made on first use. */
function knownPretty(value: Dict, pretty: string): Marshalled {
  let compact: string | undefined;
  return {
    pretty,
    get compact() {
      return (compact ??= dumps(value));
    },
  };
}
