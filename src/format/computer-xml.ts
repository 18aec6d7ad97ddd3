// Minimal xml_marshaller codec for the computer dict (dict, list, str, int,
// bool, None), byte-compatible with what slapos.core writes and sends
// (fixtures/xml-marshaller, slap-traffic/01-format.jsonl). Temporary: the lead
// switches format to the shared src/slap codec at merge.
export type MarshalValue = string | number | boolean | null | MarshalValue[] | { [key: string]: MarshalValue };

/** xml_marshaller escapes text once, lxml a second time; non-ASCII becomes &#N;. */
function escapeText(text: string): string {
  let once = text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
  once = once.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('\r', '&#13;');
  let out = '';
  for (const ch of once) {
    const code = ch.codePointAt(0) ?? 0;
    if (code < 0x20 && code !== 9 && code !== 10 && code !== 13) {
      throw new Error(`cannot marshal control character U+${code.toString(16).padStart(4, '0')}`);
    }
    out += code > 0x7f ? `&#${code};` : ch;
  }
  return out;
}

interface Node {
  tag: string;
  id?: number;
  text?: string;
  children?: Node[];
}

function toTree(value: MarshalValue, counter: { next: number }): Node {
  if (value === null) return { tag: 'none' };
  if (typeof value === 'boolean') return { tag: 'bool', text: value ? '1' : '0' };
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`cannot marshal non-integer number ${value}`);
    return { tag: 'int', text: String(value) };
  }
  if (typeof value === 'string') return { tag: 'string', text: escapeText(value) };
  const id = counter.next++;
  if (Array.isArray(value)) return { tag: 'list', id, children: value.map((v) => toTree(v, counter)) };
  const children: Node[] = [];
  // Python sorts str keys by code point; JS's default sort compares UTF-16 units,
  // which differs only for astral characters, never in the computer dict.
  for (const key of Object.keys(value).sort()) {
    children.push({ tag: 'string', text: escapeText(key) });
    children.push(toTree(value[key] as MarshalValue, counter));
  }
  return { tag: 'dictionary', id, children };
}

function open(node: Node): string {
  return node.id === undefined ? `<${node.tag}` : `<${node.tag} id="i${node.id}"`;
}

function compact(node: Node): string {
  if (node.children !== undefined) {
    return node.children.length === 0 ? `${open(node)}/>` : `${open(node)}>${node.children.map(compact).join('')}</${node.tag}>`;
  }
  if (node.text === undefined) return `${open(node)}/>`;
  return `${open(node)}>${node.text}</${node.tag}>`;
}

function pretty(node: Node, depth: number): string {
  const pad = '  '.repeat(depth);
  if (node.children !== undefined && node.children.length > 0) {
    return `${pad}${open(node)}>\n${node.children.map((c) => pretty(c, depth + 1)).join('')}${pad}</${node.tag}>\n`;
  }
  return `${pad}${compact(node)}\n`;
}

/** xml_marshaller.dumps(value): what the master receives. */
export function dumps(value: MarshalValue): string {
  return `<marshal>${compact(toTree(value, { next: 2 }))}</marshal>`;
}

/** The state file text: the same, pretty-printed as lxml does (2 spaces, no declaration). */
export function dumpsPretty(value: MarshalValue): string {
  return `<marshal>\n${pretty(toTree(value, { next: 2 }), 1)}</marshal>\n`;
}

function unescapeOnce(text: string): string {
  return text
    .replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-fA-F]+);/g, (_, n: string) => String.fromCodePoint(parseInt(n, 16)))
    .replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&quot;', '"').replaceAll('&apos;', "'").replaceAll('&amp;', '&');
}

/**
 * Reads a marshalled computer dict (the reference's state file or ours). Only
 * the tags the computer dict uses; anything else is an error naming the tag.
 */
export function loads(xml: string): MarshalValue {
  const tokens = xml.matchAll(/<(\/?)([a-z]+)((?:\s+[a-z]+="[^"]*")*)\s*(\/?)>|([^<]+)/g);
  const stack: { tag: string; items: MarshalValue[]; text: string }[] = [{ tag: '#root', items: [], text: '' }];
  for (const token of tokens) {
    const top = stack[stack.length - 1];
    if (!top) throw new Error('malformed marshalled XML');
    if (token[5] !== undefined) {
      top.text += token[5];
      continue;
    }
    const [, closing, tag = '', , selfClosing] = token;
    if (!closing) {
      if (!['marshal', 'dictionary', 'list', 'string', 'int', 'long', 'bool', 'none', 'unicode'].includes(tag)) {
        throw new Error(`unsupported element <${tag}> in marshalled XML`);
      }
      stack.push({ tag, items: [], text: '' });
      if (!selfClosing) continue;
    } else if (top.tag !== tag) {
      throw new Error(`malformed marshalled XML: </${tag}> closes <${top.tag}>`);
    }
    const done = stack.pop();
    const parent = stack[stack.length - 1];
    if (!done || !parent) throw new Error('malformed marshalled XML');
    const value = finish(done);
    if (value !== undefined) parent.items.push(value);
  }
  const root = stack[0];
  if (stack.length !== 1 || !root || root.items.length !== 1) throw new Error('malformed marshalled XML: no single <marshal> value');
  return root.items[0] as MarshalValue;
}

function finish(node: { tag: string; items: MarshalValue[]; text: string }): MarshalValue | undefined {
  switch (node.tag) {
    case 'marshal':
      return node.items[0] ?? null;
    case 'none':
      return null;
    case 'bool':
      return node.text.trim() === '1';
    case 'int':
    case 'long':
      return Number(node.text.trim());
    case 'string':
    case 'unicode':
      // The XML layer once, then the marshaller's own escaping once.
      return unescapeOnce(unescapeOnce(node.text));
    case 'list':
      return node.items;
    case 'dictionary': {
      const out: { [key: string]: MarshalValue } = {};
      for (let i = 0; i + 1 < node.items.length; i += 2) out[String(node.items[i])] = node.items[i + 1] as MarshalValue;
      return out;
    }
    default:
      return undefined;
  }
}
