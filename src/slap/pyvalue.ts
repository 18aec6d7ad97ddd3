// The Python values that travel in xml_marshaller documents, as JS values.
// Plain JS covers most of them (null, boolean, string, integer numbers,
// arrays = lists, plain objects = dicts with string keys); wrappers keep what
// JS would lose: floats that look like integers, tuples, non-string dict keys,
// objects of the four slapos classes, sets.

/** A Python float (kept apart from int so that 3.0 stays <float>3.0</float>). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** A Python tuple (marshalled without id). */
export class PyTuple {
  constructor(readonly items: PyValue[]) {}
}

/** A Python set (decoded only; slapos never sends one). */
export class PySet {
  constructor(readonly items: PyValue[]) {}
}

/** A dict with keys that are not all strings, in the order given. */
export class PyDict {
  constructor(readonly entries: Array<[PyValue, PyValue]>) {}
}

/** An `<object module class>`: constructor arguments and instance __dict__. */
export class PyObject {
  constructor(
    readonly module: string,
    readonly className: string,
    readonly initArgs: PyValue[],
    readonly state: PyRecord,
  ) {}
}

export interface PyRecord {
  [key: string]: PyValue;
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyFloat
  | PyTuple
  | PySet
  | PyDict
  | PyObject
  | PyValue[]
  | PyRecord;

/** Sets a key without tripping over `__proto__` and friends. */
export function setKey(record: PyRecord, key: string, value: PyValue): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}

export function isRecord(value: unknown): value is PyRecord {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Python's str(float): shortest round-trip digits, ".0" on integers, exponent when < 1e-4 or ≥ 1e16. */
export function pyFloatRepr(value: number): string {
  if (Number.isNaN(value)) return 'nan';
  if (value === Infinity) return 'inf';
  if (value === -Infinity) return '-inf';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const [mantissa = '', expText = '0'] = value.toExponential().split('e');
  const exp = Number(expText);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  const sign = negative ? '-' : '';
  if (exp >= -4 && exp < 16) {
    if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
    const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
    const frac = digits.slice(exp + 1);
    return `${sign}${intPart}.${frac === '' ? '0' : frac}`;
  }
  const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
  const expSign = exp < 0 ? '-' : '+';
  return `${sign}${mant}e${expSign}${String(Math.abs(exp)).padStart(2, '0')}`;
}

/** Python repr() of a str (enough for sorting and display). */
function reprString(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  const body = text
    .replace(/\\/g, '\\\\')
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r')
    .replace(/\t/g, '\\t');
  return quote + (quote === "'" ? body.replace(/'/g, "\\'") : body) + quote;
}

/** Python repr() of a value (used to sort mixed dict keys and to str() containers). */
export function pyRepr(value: PyValue): string {
  if (value === null) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : pyFloatRepr(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return reprString(value);
  if (value instanceof Uint8Array) return `b${reprString(new TextDecoder().decode(value))}`;
  if (value instanceof PyFloat) return pyFloatRepr(value.value);
  if (value instanceof PyTuple) {
    const inner = value.items.map(pyRepr);
    return inner.length === 1 ? `(${inner[0]},)` : `(${inner.join(', ')})`;
  }
  if (value instanceof PySet) return `{${value.items.map(pyRepr).join(', ')}}`;
  if (value instanceof PyDict) return `{${value.entries.map(([k, v]) => `${pyRepr(k)}: ${pyRepr(v)}`).join(', ')}}`;
  if (value instanceof PyObject) return `<${value.module}.${value.className} object>`;
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(', ')}]`;
  return `{${Object.entries(value).map(([k, v]) => `${reprString(k)}: ${pyRepr(v)}`).join(', ')}}`;
}

/** Python str(): strings as they are, everything else as repr(). */
export function pyStr(value: PyValue): string {
  return typeof value === 'string' ? value : pyRepr(value);
}

/** Compares strings by code point, as Python does (JS `<` compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const cx = x.value.codePointAt(0) ?? 0;
    const cy = y.value.codePointAt(0) ?? 0;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}

function numeric(value: PyValue): number | bigint | undefined {
  if (typeof value === 'number' || typeof value === 'bigint') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof PyFloat) return value.value;
  return undefined;
}

/** xml_marshaller's key order: natural order within a type, else by repr(). */
export function comparePyKeys(a: PyValue, b: PyValue): number {
  if (typeof a === 'string' && typeof b === 'string') return compareCodePoints(a, b);
  const na = numeric(a);
  const nb = numeric(b);
  if (na !== undefined && nb !== undefined) return na < nb ? -1 : na > nb ? 1 : 0;
  return compareCodePoints(pyRepr(a), pyRepr(b));
}
