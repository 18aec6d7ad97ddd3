// TioXML (slap-protocol.md §8.1): the journal posted with useComputer and the
// partition consumption files instances write. Pure: rendering, and the
// structural checks of computer_consumption.xsd / partition_consumption.xsd
// (lib/xsd/, reconstructed from the spec) written in TypeScript, since no XSD
// validator is available from npm offline; the tests cross-check with xmllint.
import { readXmlTree, type XmlElement } from '../slap/xml-tree.js';

export interface Movement {
  resource: string;
  title?: string | undefined;
  reference?: string | undefined;
  quantity: number;
  price: number;
  vat: string;
  categories?: string[] | undefined;
}

export interface Transaction {
  type: string;
  title?: string | undefined;
  startDate: string;
  stopDate: string;
  reference: string;
  currency: string;
  paymentMode: string;
  categories: string[];
  arrow: { type: string; source?: string | undefined; destination?: string | undefined };
  movements: Movement[];
}

const escape = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const leaf = (name: string, value: string, indent: string) => `${indent}<${name}>${escape(value)}</${name}>`;

/** A float as xs:float reads it: no exponent for ordinary values, at most 6 decimals. */
export function formatQuantity(value: number): string {
  if (!Number.isFinite(value)) throw new Error(`quantity ${value} is not a finite number`);
  const fixed = value.toFixed(6).replace(/\.?0+$/, '');
  return fixed === '-0' ? '0' : fixed;
}

function renderMovement(m: Movement, indent: string): string[] {
  const inner = `${indent}  `;
  const lines = [`${indent}<movement>`, leaf('resource', m.resource, inner)];
  if (m.title !== undefined) lines.push(leaf('title', m.title, inner));
  if (m.reference !== undefined) lines.push(leaf('reference', m.reference, inner));
  lines.push(leaf('quantity', formatQuantity(m.quantity), inner), leaf('price', formatQuantity(m.price), inner), leaf('VAT', m.vat, inner));
  for (const c of m.categories ?? []) lines.push(leaf('category', c, inner));
  lines.push(`${indent}</movement>`);
  return lines;
}

export function renderJournal(transactions: readonly Transaction[]): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<journal>'];
  for (const t of transactions) {
    lines.push(`  <transaction type="${escape(t.type)}">`);
    if (t.title !== undefined) lines.push(leaf('title', t.title, '    '));
    lines.push(
      leaf('start_date', t.startDate, '    '), leaf('stop_date', t.stopDate, '    '), leaf('reference', t.reference, '    '),
      leaf('currency', t.currency, '    '), leaf('payment_mode', t.paymentMode, '    '),
    );
    for (const c of t.categories) lines.push(leaf('category', c, '    '));
    lines.push(`    <arrow type="${escape(t.arrow.type)}">`);
    if (t.arrow.source !== undefined) lines.push(leaf('source', t.arrow.source, '      '));
    if (t.arrow.destination !== undefined) lines.push(leaf('destination', t.arrow.destination, '      '));
    lines.push('    </arrow>');
    for (const m of t.movements) lines.push(...renderMovement(m, '    '));
    lines.push('  </transaction>');
  }
  lines.push('</journal>', '');
  return lines.join('\n');
}

export class TioXmlError extends Error {
  override name = 'TioXmlError';
}

// ---- structural validation (the XSDs' sequences, occurrences and types) ----

interface Particle {
  name: string;
  min: number;
  max: number;
  check?: (element: XmlElement, where: string) => void;
}

const FLOAT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?INF$|^NaN$/;

function simple(element: XmlElement, where: string): void {
  if (element.children.length > 0) throw new TioXmlError(`${where}: <${element.name}> must hold text only`);
}

function float(element: XmlElement, where: string): void {
  simple(element, where);
  if (!FLOAT.test(element.text.trim())) throw new TioXmlError(`${where}: <${element.name}> is not a float: ${JSON.stringify(element.text.slice(0, 40))}`);
}

function noText(element: XmlElement, where: string): void {
  if (element.text.trim() !== '') throw new TioXmlError(`${where}: <${element.name}> holds text outside its elements`);
}

function sequence(element: XmlElement, particles: readonly Particle[], where: string): void {
  noText(element, where);
  let i = 0;
  for (const particle of particles) {
    let count = 0;
    while (i < element.children.length && element.children[i]?.name === particle.name && count < particle.max) {
      const child = element.children[i] as XmlElement;
      (particle.check ?? simple)(child, `${where}/${particle.name}[${count + 1}]`);
      count += 1;
      i += 1;
    }
    if (count < particle.min) {
      const found = element.children[i]?.name;
      throw new TioXmlError(`${where}: expected <${particle.name}>${found ? `, found <${found}>` : ' (missing)'}`);
    }
  }
  const extra = element.children[i];
  if (extra) throw new TioXmlError(`${where}: unexpected <${extra.name}>`);
}

const many = Number.POSITIVE_INFINITY;

const movementCheck = (element: XmlElement, where: string) =>
  sequence(element, [
    { name: 'resource', min: 1, max: 1 },
    { name: 'title', min: 0, max: 1 },
    { name: 'reference', min: 0, max: 1 },
    { name: 'quantity', min: 1, max: 1, check: float },
    { name: 'price', min: 1, max: 1, check: float },
    { name: 'VAT', min: 1, max: 1 },
    { name: 'category', min: 0, max: many },
  ], where);

function requireAttribute(element: XmlElement, name: string, where: string): void {
  if (element.attrs[name] === undefined) throw new TioXmlError(`${where}: attribute ${name} is required`);
}

const arrowCheck = (element: XmlElement, where: string) => {
  requireAttribute(element, 'type', where);
  sequence(element, [{ name: 'source', min: 0, max: 1 }, { name: 'destination', min: 0, max: 1 }], where);
};

const transactionCheck = (element: XmlElement, where: string) => {
  requireAttribute(element, 'type', where);
  sequence(element, [
    { name: 'title', min: 0, max: 1 },
    { name: 'start_date', min: 1, max: 1 },
    { name: 'stop_date', min: 1, max: 1 },
    { name: 'reference', min: 1, max: 1 },
    { name: 'currency', min: 1, max: 1 },
    { name: 'payment_mode', min: 1, max: 1 },
    { name: 'category', min: 0, max: many },
    { name: 'arrow', min: 1, max: many, check: arrowCheck },
    { name: 'movement', min: 1, max: many, check: movementCheck },
  ], where);
};

function parse(text: string): XmlElement {
  try {
    return readXmlTree(text);
  } catch (error) {
    throw new TioXmlError((error as Error).message);
  }
}

/** Checks a journal against computer_consumption.xsd; throws TioXmlError naming the place. */
export function validateJournal(text: string): XmlElement {
  const root = parse(text);
  if (root.name !== 'journal') throw new TioXmlError(`root element is <${root.name}>, expected <journal>`);
  sequence(root, [{ name: 'transaction', min: 1, max: many, check: transactionCheck }], 'journal');
  return root;
}

/** Checks a partition file against partition_consumption.xsd and returns its movements. */
export function parseConsumption(text: string): Movement[] {
  const root = parse(text);
  if (root.name !== 'consumption') throw new TioXmlError(`root element is <${root.name}>, expected <consumption>`);
  sequence(root, [{ name: 'movement', min: 1, max: many, check: movementCheck }], 'consumption');
  return root.children.map(movementFromElement);
}

function movementFromElement(element: XmlElement, index: number): Movement {
  const get = (name: string) => element.children.find((c) => c.name === name)?.text.trim();
  // Stricter than the XSD: INF and NaN are valid xs:float but meaningless as usage.
  for (const name of ['quantity', 'price']) {
    if (!Number.isFinite(Number(get(name)))) throw new TioXmlError(`consumption/movement[${index + 1}]: <${name}> is not a finite number`);
  }
  return {
    resource: get('resource') ?? '',
    title: get('title'),
    reference: get('reference'),
    quantity: Number(get('quantity')),
    price: Number(get('price')),
    vat: get('VAT') ?? '',
    categories: element.children.filter((c) => c.name === 'category').map((c) => c.text.trim()),
  };
}

/** "YYYY-MM-DD HH:MM:SS" in UTC. */
export function tioDate(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace('T', ' ').slice(0, 19);
}

/**
 * The journal of the movements instances reported (slapgrid.md §5.1 step 4):
 * each movement's reference becomes the partition id. The reference's
 * stop_date is local "YYYY-MM-DD at HH:MM:SS"; we keep that shape in UTC.
 */
export function partitionFilesJournal(computerId: string, now: number, perPartition: ReadonlyMap<string, readonly Movement[]>): string {
  const movements: Movement[] = [];
  for (const [partition, list] of perPartition) for (const m of list) movements.push({ ...m, reference: partition });
  return renderJournal([{
    type: 'Sale Packing List', title: 'Resource consumptions', startDate: '',
    stopDate: tioDate(now).replace(' ', ' at '), reference: computerId, currency: '', paymentMode: '',
    categories: [''], arrow: { type: 'Administration', source: '', destination: '' }, movements,
  }]);
}
