// xml_marshaller `loads` (slapos.util.loads): never instantiates anything;
// objects become PyObject records, and only the slapos.slap.slap classes are accepted.
import { setKey, PyDict, PyFloat, PyObject, PySet, PyTuple, type PyRecord, type PyValue } from './pyvalue.js';
import { XmlInputError } from './errors.js';
import { DEFAULT_XML_LIMITS, readXmlTree, type XmlElement, type XmlLimits } from './xml-tree.js';

export const ALLOWED_CLASSES: ReadonlySet<string> = new Set([
  'slapos.slap.slap.Computer',
  'slapos.slap.slap.ComputerPartition',
  'slapos.slap.slap.SoftwareRelease',
  'slapos.slap.slap.SoftwareInstance',
]);

/** The second level of escaping (saxutils.unescape: only &lt; &gt; &amp;, &amp; last). */
function unescapeOnce(text: string): string {
  return text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/**
 * Bounds on the value a document expands to. `<reference>` ids let a small
 * document describe a huge (or cyclic) graph: every reference counts the whole
 * value it points to, as if it were written out, so the expanded value is
 * never larger than a document without references could be under the same
 * limits. Anything past a bound, and any cycle, is an XmlInputError (400).
 */
export interface DecodeBudget {
  /** Values (elements) in the expanded value. */
  maxNodes: number;
  /** Characters of strings (keys included) in the expanded value. */
  maxTextChars: number;
  /** Nesting depth of the expanded value. */
  maxDepth: number;
}

/** What a document may expand to: what the same XML limits allow written out. */
export const budgetOf = (limits: XmlLimits): DecodeBudget => ({
  maxNodes: limits.maxElements, maxTextChars: limits.maxBytes, maxDepth: limits.maxDepth,
});

/** Expanded size of one decoded value with an id (what a reference to it adds). */
interface Extent {
  nodes: number;
  chars: number;
  /** Depth below (and including) the element. */
  depth: number;
}

class Decoder {
  private readonly ids = new Map<string, PyValue>();
  /** Sizes of the finished id'd values; an id still being decoded is absent (a reference to it is a cycle). */
  private readonly extents = new Map<string, Extent>();
  /** Ids whose element is being decoded (its ancestors). */
  private readonly open = new Set<string>();
  private nodes = 0;
  private chars = 0;
  /** Deepest expanded depth reached below the element being decoded. */
  private deepest = 0;

  constructor(private readonly budget: DecodeBudget) {}

  private register(el: XmlElement, value: PyValue): void {
    const id = el.attrs.id;
    if (id !== undefined) this.ids.set(id, value);
  }

  private count(nodes: number, chars: number, depth: number): void {
    this.nodes += nodes;
    this.chars += chars;
    if (depth > this.deepest) this.deepest = depth;
    if (this.nodes > this.budget.maxNodes) throw new XmlInputError(`marshalled value expands to more than ${this.budget.maxNodes} values`);
    if (this.chars > this.budget.maxTextChars) throw new XmlInputError(`marshalled value expands to more than ${this.budget.maxTextChars} characters of text`);
    if (depth > this.budget.maxDepth) throw new XmlInputError(`marshalled value expands deeper than ${this.budget.maxDepth} levels`);
  }

  /** Decodes one element at expanded depth `depth` (1 for the root value), counting it in the budget. */
  value(el: XmlElement, depth = 1): PyValue {
    if (el.name === 'reference') return this.reference(el, depth);
    const id = el.attrs.id;
    if (id === undefined) return this.decode(el, depth);
    if (this.open.has(id) || this.extents.has(id)) throw new XmlInputError(`id "${id.slice(0, 20)}" defined twice`);
    const before = { nodes: this.nodes, chars: this.chars, deepest: this.deepest };
    this.deepest = depth;
    this.open.add(id);
    const value = this.decode(el, depth);
    this.open.delete(id);
    this.extents.set(id, { nodes: this.nodes - before.nodes, chars: this.chars - before.chars, depth: this.deepest - depth + 1 });
    this.deepest = Math.max(this.deepest, before.deepest);
    return value;
  }

  private reference(el: XmlElement, depth: number): PyValue {
    const id = el.attrs.id ?? '';
    if (this.open.has(id)) throw new XmlInputError(`<reference> to "${id.slice(0, 20)}" inside itself (a cycle)`);
    const extent = this.extents.get(id);
    if (!extent || !this.ids.has(id)) throw new XmlInputError(`<reference> to unknown id "${id.slice(0, 20)}"`);
    this.count(extent.nodes, extent.chars, depth + extent.depth - 1);
    return this.ids.get(id) ?? null;
  }

  private decode(el: XmlElement, depth: number): PyValue {
    const isText = el.name === 'string' || el.name === 'unicode';
    this.count(1, isText ? el.text.length : 0, depth);
    const child = (c: XmlElement) => this.value(c, depth + 1);
    switch (el.name) {
      case 'none':
        return null;
      case 'bool': {
        const t = el.text.trim();
        if (t !== '1' && t !== '0') throw new XmlInputError(`bad <bool> value "${t.slice(0, 20)}"`);
        return t === '1';
      }
      case 'int':
      case 'long':
        return this.integer(el.text.trim());
      case 'float':
        return new PyFloat(this.float(el.text.trim()));
      case 'string':
      case 'unicode':
        return unescapeOnce(el.text);
      case 'tuple':
        return new PyTuple(el.children.map(child));
      case 'list': {
        const list: PyValue[] = [];
        this.register(el, list);
        for (const c of el.children) list.push(child(c));
        return list;
      }
      case 'set': {
        const set = new PySet([]);
        this.register(el, set);
        for (const c of el.children) set.items.push(child(c));
        return set;
      }
      case 'dictionary':
        return this.dict(el, depth);
      case 'object':
        return this.object(el, depth);
      default:
        throw new XmlInputError(`unknown xml_marshaller element <${el.name.slice(0, 40)}>`);
    }
  }

  private integer(text: string): number | bigint {
    if (!/^[+-]?\d{1,400}$/.test(text)) throw new XmlInputError(`bad integer "${text.slice(0, 20)}"`);
    const big = BigInt(text);
    return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  }

  private float(text: string): number {
    if (text === 'inf' || text === '+inf') return Infinity;
    if (text === '-inf') return -Infinity;
    if (text === 'nan') return NaN;
    if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) throw new XmlInputError(`bad float "${text.slice(0, 20)}"`);
    return Number(text);
  }

  private dict(el: XmlElement, depth: number): PyRecord | PyDict {
    if (el.children.length % 2 !== 0) throw new XmlInputError('<dictionary> with an odd number of children');
    const entries: Array<[PyValue, PyValue]> = [];
    const record: PyRecord = {};
    this.register(el, record);
    for (let i = 0; i < el.children.length; i += 2) {
      entries.push([this.value(el.children[i] as XmlElement, depth + 1), this.value(el.children[i + 1] as XmlElement, depth + 1)]);
    }
    if (entries.every(([k]) => typeof k === 'string')) {
      for (const [k, v] of entries) setKey(record, k as string, v);
      return record;
    }
    const dict = new PyDict(entries);
    this.register(el, dict);
    return dict;
  }

  private object(el: XmlElement, depth: number): PyObject {
    const module = el.attrs.module ?? '';
    const className = el.attrs.class ?? '';
    if (!ALLOWED_CLASSES.has(`${module}.${className}`)) {
      throw new XmlInputError(`refusing to unmarshal object of class ${module.slice(0, 60)}.${className.slice(0, 60)}`);
    }
    const [argsEl, stateEl, ...rest] = el.children;
    if (rest.length > 0) throw new XmlInputError('<object> with extra children');
    const obj = new PyObject(module, className, [], {});
    this.register(el, obj);
    if (argsEl) {
      const args = this.value(argsEl, depth + 1);
      if (!(args instanceof PyTuple)) throw new XmlInputError('<object> arguments must be a <tuple>');
      obj.initArgs.push(...args.items);
    }
    if (stateEl) {
      const state = this.value(stateEl, depth + 1);
      if (state === null || typeof state !== 'object' || Array.isArray(state) || state instanceof PyDict || Object.getPrototypeOf(state) !== Object.prototype) {
        throw new XmlInputError('<object> state must be a dictionary with string keys');
      }
      for (const [k, v] of Object.entries(state as PyRecord)) setKey(obj.state, k, v);
    }
    return obj;
  }
}

/**
 * Unmarshals an xml_marshaller document; throws XmlInputError on anything
 * unexpected, on a cycle, or when the value expands past `budget`.
 */
export function loads(xml: string, limits: XmlLimits = DEFAULT_XML_LIMITS, budget: DecodeBudget = budgetOf(limits)): PyValue {
  const root = readXmlTree(xml, limits);
  if (root.name !== 'marshal') throw new XmlInputError(`root element must be <marshal>, not <${root.name.slice(0, 40)}>`);
  const [only, ...rest] = root.children;
  if (!only || rest.length > 0) throw new XmlInputError('<marshal> must hold exactly one value');
  return new Decoder(budget).value(only);
}
