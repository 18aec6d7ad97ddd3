// The state file (computer_xml) form of the computer dict: the shared
// xml_marshaller codec of src/slap, pretty-printed as lxml does when
// slapos.core writes the file (2 spaces, no declaration).
import { dumps } from '../slap/marshal-encode.js';
import { loads } from '../slap/marshal-decode.js';

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

/** The state file text of a computer dict. */
export function dumpsState(computer: Dict): string {
  return prettyXml(dumps(computer));
}

export function plain(value: unknown): value is MarshalValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true;
  if (typeof value === 'number') return Number.isInteger(value);
  if (Array.isArray(value)) return value.every(plain);
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) return Object.values(value as object).every(plain);
  return false;
}

/**
 * Reads a state file (ours or slapos.core's) with the shared decoder. Only the
 * value types the computer dict uses are accepted, so the rest of format can
 * treat it as plain data.
 */
export function loadsState(xml: string): Dict {
  const value = loads(xml);
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !plain(value)) {
    throw new Error('not a marshalled computer dictionary (a dictionary of strings, integers, booleans, None, lists and dictionaries)');
  }
  return value as Dict;
}

/**
 * The stored computer dict, from the state file text. When computer_json
 * holds a value that marshals to exactly that text, it is the same value
 * (marshalling is one-to-one on these types) and the XML need not be parsed.
 */
export function storedComputer(xmlText: string, jsonText: string | null): Dict {
  if (jsonText !== null) {
    try {
      const value: unknown = JSON.parse(jsonText);
      if (value !== null && typeof value === 'object' && !Array.isArray(value) && plain(value) && dumpsState(value as Dict) === xmlText) return value as Dict;
    } catch {
      // not usable: read the XML
    }
  }
  return loadsState(xmlText);
}
