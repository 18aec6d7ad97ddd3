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

class Decoder {
  private readonly ids = new Map<string, PyValue>();

  private register(el: XmlElement, value: PyValue): void {
    const id = el.attrs.id;
    if (id !== undefined) this.ids.set(id, value);
  }

  value(el: XmlElement): PyValue {
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
        return new PyTuple(el.children.map((c) => this.value(c)));
      case 'list': {
        const list: PyValue[] = [];
        this.register(el, list);
        for (const c of el.children) list.push(this.value(c));
        return list;
      }
      case 'set': {
        const set = new PySet([]);
        this.register(el, set);
        for (const c of el.children) set.items.push(this.value(c));
        return set;
      }
      case 'dictionary':
        return this.dict(el);
      case 'object':
        return this.object(el);
      case 'reference': {
        const id = el.attrs.id ?? '';
        if (!this.ids.has(id)) throw new XmlInputError(`<reference> to unknown id "${id.slice(0, 20)}"`);
        return this.ids.get(id) ?? null;
      }
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

  private dict(el: XmlElement): PyRecord | PyDict {
    if (el.children.length % 2 !== 0) throw new XmlInputError('<dictionary> with an odd number of children');
    const entries: Array<[PyValue, PyValue]> = [];
    const record: PyRecord = {};
    this.register(el, record);
    for (let i = 0; i < el.children.length; i += 2) {
      entries.push([this.value(el.children[i] as XmlElement), this.value(el.children[i + 1] as XmlElement)]);
    }
    if (entries.every(([k]) => typeof k === 'string')) {
      for (const [k, v] of entries) setKey(record, k as string, v);
      return record;
    }
    const dict = new PyDict(entries);
    this.register(el, dict);
    return dict;
  }

  private object(el: XmlElement): PyObject {
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
      const args = this.value(argsEl);
      if (!(args instanceof PyTuple)) throw new XmlInputError('<object> arguments must be a <tuple>');
      obj.initArgs.push(...args.items);
    }
    if (stateEl) {
      const state = this.value(stateEl);
      if (state === null || typeof state !== 'object' || Array.isArray(state) || state instanceof PyDict || Object.getPrototypeOf(state) !== Object.prototype) {
        throw new XmlInputError('<object> state must be a dictionary with string keys');
      }
      for (const [k, v] of Object.entries(state as PyRecord)) setKey(obj.state, k, v);
    }
    return obj;
  }
}

/** Unmarshals an xml_marshaller document; throws XmlInputError on anything unexpected. */
export function loads(xml: string, limits: XmlLimits = DEFAULT_XML_LIMITS): PyValue {
  const root = readXmlTree(xml, limits);
  if (root.name !== 'marshal') throw new XmlInputError(`root element must be <marshal>, not <${root.name.slice(0, 40)}>`);
  const [only, ...rest] = root.children;
  if (!only || rest.length > 0) throw new XmlInputError('<marshal> must hold exactly one value');
  return new Decoder().value(only);
}
