// "Instance XML": how parameters and connection parameters are stored
// (slapos.util dict2xml / xml2dict). Lossy by design: every value is str()-ed.
import { compareCodePoints, pyStr, type PyValue } from './pyvalue.js';
import { xmlText } from './marshal-encode.js';
import { XmlInputError } from './errors.js';
import { DEFAULT_XML_LIMITS, readXmlTree, type XmlLimits } from './xml-tree.js';

const HEADER = "<?xml version='1.0' encoding='utf-8'?>\n";

/** Like lxml with encoding utf-8: single escaping, non-ASCII kept raw. */
function text(value: string): string {
  return xmlText(value, /[^\u0000-\u007f]/).replace(/&#(\d+);/g, (all, code: string) =>
    code === '13' ? all : String.fromCodePoint(Number(code)),
  );
}

function attribute(value: string): string {
  return text(value).replace(/"/g, '&quot;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
}

/** dict2xml: sorted keys, values str()-ed, pretty-printed with two spaces. */
export function dictToInstanceXml(params: Readonly<Record<string, PyValue>>): string {
  const keys = Object.keys(params).sort(compareCodePoints);
  if (keys.length === 0) return `${HEADER}<instance/>\n`;
  const lines = keys.map((key) => `  <parameter id="${attribute(key)}">${text(pyStr(params[key] ?? null))}</parameter>\n`);
  return `${HEADER}<instance>\n${lines.join('')}</instance>\n`;
}

const CANONICAL = /^ {2}<parameter id="([^"<>&]*)">([^<>&]*)<\/parameter>$/;

/**
 * The common case without an XML parser: a document exactly as dictToInstanceXml
 * writes it, with plain keys and values. Trusted only if re-encoding the result
 * gives back the same bytes; anything else goes through the guarded parser.
 */
function canonicalToDict(xml: string): Record<string, string> | undefined {
  if (xml.length > 1_000_000 || !xml.startsWith(`${HEADER}<instance>\n`) || !xml.endsWith('</instance>\n')) return undefined;
  const lines = xml.slice(HEADER.length + 11, -12).split('\n');
  if (lines.pop() !== '') return undefined;
  const result: Record<string, string> = {};
  for (const line of lines) {
    const m = CANONICAL.exec(line);
    if (!m || m[2] === '' || Object.hasOwn(result, m[1] ?? '')) return undefined;
    Object.defineProperty(result, m[1] ?? '', { value: m[2], enumerable: true, writable: true, configurable: true });
  }
  return dictToInstanceXml(result) === xml ? result : undefined;
}

/** xml2dict: an empty <parameter> is null, a repeated id joins values with a space. */
export function instanceXmlToDict(xml: string | null | undefined, limits: XmlLimits = DEFAULT_XML_LIMITS): Record<string, string | null> {
  const result: Record<string, string | null> = {};
  if (!xml) return result;
  if (xml === `${HEADER}<instance/>\n`) return result;
  const fast = canonicalToDict(xml);
  if (fast) return fast;
  const root = readXmlTree(xml, limits);
  if (root.name !== 'instance') throw new XmlInputError(`root element must be <instance>, not <${root.name.slice(0, 40)}>`);
  for (const el of root.children) {
    if (el.name !== 'parameter') continue;
    const key = el.attrs.id ?? '';
    const value = el.text === '' ? null : el.text;
    const previous = Object.hasOwn(result, key) ? result[key] : null;
    const joined = previous !== null && previous !== undefined ? `${previous} ${value ?? ''}` : value;
    Object.defineProperty(result, key, { value: joined, enumerable: true, writable: true, configurable: true });
  }
  return result;
}
