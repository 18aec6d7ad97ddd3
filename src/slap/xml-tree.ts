// A guarded XML reader shared by the two SLAP formats (xml_marshaller and
// instance XML). saxes never expands DTD entities; on top of that we refuse any
// DOCTYPE and processing instruction, and cap size, depth and element count,
// so billion-laughs, external entities and deep nesting are rejected early.
import { SaxesParser } from 'saxes';
import { XmlInputError } from './errors.js';

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated character data directly inside this element. */
  text: string;
}

export interface XmlLimits {
  maxBytes: number;
  maxDepth: number;
  maxElements: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = { maxBytes: 16 * 1024 * 1024, maxDepth: 64, maxElements: 500_000 };

/** Parses a whole document into a tree, or throws XmlInputError. */
export function readXmlTree(text: string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlElement {
  if (text.length > limits.maxBytes) throw new XmlInputError(`XML document larger than ${limits.maxBytes} bytes`);
  const parser = new SaxesParser({ xmlns: false, position: true });
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let count = 0;
  let failure: Error | undefined;
  const fail = (message: string) => {
    failure ??= new XmlInputError(message);
  };
  parser.on('error', (error) => fail(`malformed XML: ${error.message}`));
  parser.on('doctype', () => fail('DOCTYPE is not allowed'));
  parser.on('processinginstruction', () => fail('processing instructions are not allowed'));
  parser.on('opentag', (tag) => {
    count += 1;
    if (count > limits.maxElements) fail(`more than ${limits.maxElements} XML elements`);
    if (stack.length >= limits.maxDepth) fail(`XML nested deeper than ${limits.maxDepth}`);
    const attrs: Record<string, string> = {};
    for (const [key, value] of Object.entries(tag.attributes)) attrs[key] = String(value);
    const element: XmlElement = { name: tag.name.replace(/^[^:]*:/, ''), attrs, children: [], text: '' };
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(element);
    else root = element;
    stack.push(element);
  });
  parser.on('text', (data) => {
    const current = stack[stack.length - 1];
    if (current) current.text += data;
  });
  parser.on('cdata', (data) => {
    const current = stack[stack.length - 1];
    if (current) current.text += data;
  });
  parser.on('closetag', () => {
    stack.pop();
  });
  try {
    // Feed in chunks so a hostile document stops at the first problem.
    const CHUNK = 64 * 1024;
    for (let i = 0; i < text.length && !failure; i += CHUNK) parser.write(text.slice(i, i + CHUNK));
    if (!failure) parser.close();
  } catch (error) {
    fail(`malformed XML: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (failure) throw failure;
  if (!root) throw new XmlInputError('empty XML document');
  return root;
}
