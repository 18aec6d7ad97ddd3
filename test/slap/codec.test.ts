// Golden and round-trip tests of the xml_marshaller and instance-XML codecs,
// against vectors produced by the reference implementation.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { dumps } from '../../src/slap/marshal-encode.js';
import { loads } from '../../src/slap/marshal-decode.js';
import { dictToInstanceXml, instanceXmlToDict } from '../../src/slap/instance-xml.js';
import { PyDict, PyFloat, PyObject, PyTuple, pyFloatRepr, setKey, type PyRecord, type PyValue } from '../../src/slap/pyvalue.js';
import { MarshalError, XmlInputError } from '../../src/slap/errors.js';
import { fixturesDir } from '../helpers/paths.js';

interface Vector {
  name: string;
  typed_value: unknown;
  marshalled: string | null;
  error?: string;
  loads_typed_value?: unknown;
  roundtrip_identical?: boolean;
}
interface Vectors {
  vectors: Vector[];
  loads_only: Array<{ name: string; marshalled: string; loads_typed_value: unknown }>;
  instance_xml: Array<{ name: string; json_value?: Record<string, PyValue>; instance_xml: string; xml2dict_json_value: unknown }>;
}

const data = JSON.parse(readFileSync(path.join(fixturesDir, 'xml-marshaller', 'vectors.json'), 'utf8')) as Vectors;

/** Typed JSON of the vectors → our PyValue model. */
function fromTyped(v: unknown): PyValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'string' || typeof v === 'number') return v;
  if (Array.isArray(v)) return v.map(fromTyped);
  const o = v as Record<string, unknown>;
  if ('$tuple' in o) return new PyTuple((o.$tuple as unknown[]).map(fromTyped));
  if ('$int' in o) return BigInt(o.$int as string);
  if ('$float' in o) return new PyFloat(o.$float === 'inf' ? Infinity : o.$float === '-inf' ? -Infinity : Number(o.$float));
  if ('$bytes' in o) return new TextEncoder().encode(o.$bytes as string);
  if ('$dict' in o) return new PyDict((o.$dict as unknown[][]).map(([k, val]) => [fromTyped(k), fromTyped(val)]));
  if ('$object' in o) {
    const spec = o.$object as { module: string; class: string; initargs: unknown; state: unknown };
    const args = fromTyped(spec.initargs) as PyTuple;
    return new PyObject(spec.module, spec.class, args.items, fromTyped(spec.state) as PyRecord);
  }
  const rec: PyRecord = {};
  for (const [k, val] of Object.entries(o)) setKey(rec, k, fromTyped(val));
  return rec;
}

/** Our PyValue → a comparable plain shape (bigints beyond 2^53 as $int like the vectors). */
function toTyped(v: PyValue): unknown {
  if (typeof v === 'bigint') return { $int: v.toString() };
  if (v instanceof PyFloat) return { $float: pyFloatRepr(v.value) };
  if (v instanceof PyTuple) return { $tuple: v.items.map(toTyped) };
  if (v instanceof PyDict) return { $dict: v.entries.map(([k, val]) => [toTyped(k), toTyped(val)]) };
  if (v instanceof PyObject) return { $object: { module: v.module, class: v.className, initargs: { $tuple: v.initArgs.map(toTyped) }, state: toTyped(v.state) } };
  if (Array.isArray(v)) return v.map(toTyped);
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(v).map(([k, val]) => [k, toTyped(val as PyValue)]));
  }
  return v;
}

test('the vector file is there and complete', (t) => {
  t.true(data.vectors.length >= 40);
  t.true(data.instance_xml.length >= 10);
});

for (const vector of data.vectors) {
  if (vector.marshalled === null) {
    test(`dumps refuses: ${vector.name}`, (t) => {
      t.throws(() => dumps(fromTyped(vector.typed_value)), { instanceOf: MarshalError });
    });
    continue;
  }
  const marshalled = vector.marshalled;
  if (!vector.name.startsWith('shared list reference')) {
    test(`dumps is byte-identical: ${vector.name}`, (t) => {
      t.is(dumps(fromTyped(vector.typed_value)), marshalled);
    });
  }
  test(`loads gives the reference value: ${vector.name}`, (t) => {
    t.deepEqual(toTyped(loads(marshalled)), vector.loads_typed_value === undefined ? vector.typed_value : toTyped(fromTyped(vector.loads_typed_value)));
  });
  test(`dumps(loads(x)) === x: ${vector.name}`, (t) => {
    t.is(dumps(loads(marshalled)), marshalled);
  });
}

test('a shared list is restored as one object and written back as a reference', (t) => {
  const value = loads('<marshal><list id="i2"><list id="i3"><string>x</string></list><reference id="i3"/></list></marshal>') as PyValue[][];
  t.is(value[0], value[1]);
});

for (const vector of data.loads_only) {
  test(`loads accepts: ${vector.name}`, (t) => {
    t.deepEqual(toTyped(loads(vector.marshalled)), toTyped(fromTyped(vector.loads_typed_value)));
  });
}

for (const vector of data.instance_xml) {
  if (vector.json_value) {
    const params = vector.json_value;
    test(`dict2xml is byte-identical: ${vector.name}`, (t) => {
      t.is(dictToInstanceXml(params), vector.instance_xml);
    });
  }
  test(`xml2dict gives the reference dict: ${vector.name}`, (t) => {
    t.deepEqual(instanceXmlToDict(vector.instance_xml), vector.xml2dict_json_value as Record<string, string | null>);
  });
}

test('python float repr', (t) => {
  t.is(pyFloatRepr(1795299684.9072473), '1795299684.9072473');
  t.is(pyFloatRepr(1e16), '1e+16');
  t.is(pyFloatRepr(123456789012345.0), '123456789012345.0');
  t.is(pyFloatRepr(0.0001), '0.0001');
  t.is(pyFloatRepr(0.00001), '1e-05');
  t.is(pyFloatRepr(-2.5e-300), '-2.5e-300');
});

const hostile: Array<[string, string]> = [
  ['billion laughs', '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><marshal><string>&lol2;</string></marshal>'],
  ['external entity', '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><marshal><string>&xxe;</string></marshal>'],
  ['bare doctype', '<!DOCTYPE marshal><marshal><none/></marshal>'],
  ['undefined entity', '<marshal><string>&foo;</string></marshal>'],
  ['two roots', '<marshal><none/></marshal><marshal><none/></marshal>'],
  ['unclosed', '<marshal><list id="i2"><none/></marshal>'],
  ['control character', '<marshal><string>a\u0001b</string></marshal>'],
  ['processing instruction', '<marshal><?php echo 1 ?><none/></marshal>'],
  ['forbidden class', '<marshal><object id="i2" module="os" class="system"><tuple/><dictionary id="i3"/></object></marshal>'],
  ['unknown tag', '<marshal><pickle>x</pickle></marshal>'],
  ['dangling reference', '<marshal><reference id="i9"/></marshal>'],
  ['odd dictionary', '<marshal><dictionary id="i2"><string>a</string></dictionary></marshal>'],
  ['deep nesting', `<marshal>${'<list id="i2">'.repeat(200)}${'</list>'.repeat(200)}</marshal>`],
  ['bad int', '<marshal><int>12a</int></marshal>'],
  ['wrong root', '<instance/>'],
  ['empty', ''],
];
for (const [name, xml] of hostile) {
  test(`loads rejects: ${name}`, (t) => {
    t.throws(() => loads(xml), { instanceOf: XmlInputError });
  });
}

test('loads rejects an oversized document before parsing it', (t) => {
  const big = `<marshal><string>${'a'.repeat(2000)}</string></marshal>`;
  t.throws(() => loads(big, { maxBytes: 1000, maxDepth: 10, maxElements: 10 }), { message: /larger than/ });
});

test('instance XML rejects a DOCTYPE too', (t) => {
  t.throws(() => instanceXmlToDict('<!DOCTYPE i [<!ENTITY a "b">]><instance><parameter id="x">&a;</parameter></instance>'), { instanceOf: XmlInputError });
});
