// xml_marshaller `dumps`, byte-compatible with the Python 1.0.2 module that
// slapos.core uses (vectors in shared/fixtures/xml-marshaller).
import { comparePyKeys, compareCodePoints, isRecord, pyFloatRepr, PyDict, PyFloat, PyObject, PySet, PyTuple, type PyValue } from './pyvalue.js';
import { MarshalError } from './errors.js';

// XML 1.0 forbids C0 controls other than tab, LF, CR, lone surrogates, U+FFFE/U+FFFF;
// lxml refuses them, so do we (the reference raises ValueError).
const ILLEGAL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/u;

const PLAIN = /^[\u0020-\u0025\u0027-\u003b\u003d\u003f-\u007e\t\n]*$/;

/** Character data as lxml writes it with encoding=ASCII: `&<>` escaped, \r and non-ASCII as references. */
export function xmlText(text: string, extra?: RegExp): string {
  // Fast path (most values): plain printable ASCII needs no escaping at all.
  if (PLAIN.test(text) && !(extra && extra.test(text))) return text;
  if (ILLEGAL.test(text)) throw new MarshalError('strings must be XML compatible: no NUL or control characters');
  let out = '';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    if (ch === '&') out += '&amp;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === '\r') out += '&#13;';
    else if (extra?.test(ch)) out += `&#${code};`;
    else if (code > 0x7f) out += `&#${code};`;
    else out += ch;
  }
  return out;
}

/** The marshaller escapes `& < >` itself before the XML layer escapes again: the doubled escaping. */
function stringText(text: string): string {
  if (PLAIN.test(text)) return text;
  return xmlText(text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'));
}

function attr(text: string): string {
  return xmlText(text, /["\n\t]/).replace(/"/g, '&quot;');
}

class Encoder {
  private counter = 1;
  private readonly seen = new Map<object, number>();
  private out: string[] = [];

  run(value: PyValue): string {
    this.out = ['<marshal>'];
    this.value(value);
    this.out.push('</marshal>');
    return this.out.join('');
  }

  /** Lists, dicts, sets and objects get a pre-order id; a second sighting is a reference. */
  private open(obj: object, tag: string, attrs = ''): string | undefined {
    const known = this.seen.get(obj);
    if (known !== undefined) {
      this.out.push(`<reference id="i${known}"/>`);
      return undefined;
    }
    this.counter += 1;
    this.seen.set(obj, this.counter);
    return `<${tag} id="i${this.counter}"${attrs}`;
  }

  private container(obj: object, tag: string, emit: () => void, empty: boolean, attrs = ''): void {
    const head = this.open(obj, tag, attrs);
    if (head === undefined) return;
    if (empty) {
      this.out.push(`${head}/>`);
      return;
    }
    this.out.push(`${head}>`);
    emit();
    this.out.push(`</${tag}>`);
  }

  private value(value: PyValue): void {
    if (value === null) this.out.push('<none/>');
    else if (typeof value === 'boolean') this.out.push(`<bool>${value ? 1 : 0}</bool>`);
    else if (typeof value === 'number') {
      if (Number.isInteger(value)) this.integer(value);
      else this.out.push(`<float>${pyFloatRepr(value)}</float>`);
    } else if (typeof value === 'bigint') this.integer(value);
    else if (typeof value === 'string') this.out.push(value === '' ? '<string></string>' : `<string>${stringText(value)}</string>`);
    else if (value instanceof Uint8Array) this.value(new TextDecoder('utf-8', { fatal: true }).decode(value));
    else if (value instanceof PyFloat) this.out.push(`<float>${pyFloatRepr(value.value)}</float>`);
    else if (value instanceof PyTuple) this.tuple(value.items);
    else if (Array.isArray(value)) this.container(value, 'list', () => value.forEach((v) => this.value(v)), value.length === 0);
    else if (value instanceof PySet) this.container(value, 'set', () => value.items.forEach((v) => this.value(v)), value.items.length === 0);
    else if (value instanceof PyDict) this.dict(value, [...value.entries]);
    else if (value instanceof PyObject) this.object(value);
    else if (isRecord(value)) this.dict(value, Object.entries(value));
    else throw new MarshalError(`cannot marshal a value of type ${typeof value}`);
  }

  private integer(value: number | bigint): void {
    const asFloat = Number(value);
    const tag = asFloat > -1e24 && asFloat < 1e24 ? 'int' : 'long';
    this.out.push(`<${tag}>${value.toString()}</${tag}>`);
  }

  private tuple(items: PyValue[]): void {
    if (items.length === 0) {
      this.out.push('<tuple/>');
      return;
    }
    this.out.push('<tuple>');
    items.forEach((v) => this.value(v));
    this.out.push('</tuple>');
  }

  private dict(obj: object, entries: Array<[PyValue, PyValue]>): void {
    const sorted = entries.sort(([a], [b]) =>
      typeof a === 'string' && typeof b === 'string' ? compareCodePoints(a, b) : comparePyKeys(a, b),
    );
    this.container(obj, 'dictionary', () => {
      for (const [k, v] of sorted) {
        this.value(k);
        this.value(v);
      }
    }, sorted.length === 0);
  }

  private object(obj: PyObject): void {
    const head = this.open(obj, 'object', ` module="${attr(obj.module)}" class="${attr(obj.className)}"`);
    if (head === undefined) return;
    this.out.push(`${head}>`);
    this.tuple(obj.initArgs);
    this.dict(obj.state, Object.entries(obj.state));
    this.out.push('</object>');
  }
}

/** Marshals a value as xml_marshaller does (no XML declaration, ASCII output). */
export function dumps(value: PyValue): string {
  return new Encoder().run(value);
}
