// Budgets (issue 15): the marshal decoder counts the value a document expands
// to through <reference> ids and refuses past the budget or on a cycle; the
// JSON depth scan; the bound the master keeps on a computer's answer.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { jsonTooDeep } from '../../src/master/limits.js';
import * as inst from '../../src/master/instance-ops.js';
import * as node from '../../src/master/node-ops.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { XmlInputError } from '../../src/slap/errors.js';
import { dumps } from '../../src/slap/marshal-encode.js';
import { loads, type DecodeBudget } from '../../src/slap/marshal-decode.js';
import { fixturesDir } from '../helpers/paths.js';

const attack = (name: string) => readFileSync(path.join(fixturesDir, 'attacks', name), 'utf8');
const budget = (b: Partial<DecodeBudget>): DecodeBudget => ({ maxNodes: 1_000_000, maxTextChars: 1_000_000, maxDepth: 64, ...b });

test('the recorded amplification bodies are refused quickly, with the reason', (t) => {
  const started = performance.now();
  t.throws(() => loads(attack('reference-laughs.xml')), { instanceOf: XmlInputError, message: /expands to more than 500000 values/ });
  t.throws(() => loads(attack('self-reference.xml')), { instanceOf: XmlInputError, message: /inside itself \(a cycle\)/ });
  t.throws(() => loads(attack('reference-depth.xml')), { instanceOf: XmlInputError, message: /expands deeper than 64 levels/ });
  t.throws(() => loads(attack('format-address-amplification.xml')), { instanceOf: XmlInputError, message: /expands to more than/ });
  // Unchecked, these bodies expand for minutes; the bound leaves room for a loaded CI machine.
  t.true(performance.now() - started < 5_000, 'refused in a moment, not expanded');
});

test('a reference counts the whole value it points to, exactly', (t) => {
  // dict(1) + "a"(1) + list(1) + 3 strings(3) + "b"(1) + reference to the 4-value list(4) = 11 values; text: a, b, xx×3, and xx×3 again through the reference = 14.
  const doc = '<marshal><dictionary id="i2"><string>a</string><list id="i3"><string>xx</string><string>xx</string><string>xx</string></list>' +
    '<string>b</string><reference id="i3"/></dictionary></marshal>';
  const value = loads(doc, undefined, budget({ maxNodes: 11, maxTextChars: 14 })) as Record<string, unknown>;
  t.is(value.a, value.b, 'a reference is the same object, as in Python');
  t.throws(() => loads(doc, undefined, budget({ maxNodes: 10 })), { message: /more than 10 values/ });
  t.throws(() => loads(doc, undefined, budget({ maxTextChars: 13 })), { message: /more than 13 characters/ });
  // Depth: the list sits at depth 2 and its strings at 3; referenced from depth 2 it adds nothing deeper.
  t.notThrows(() => loads(doc, undefined, budget({ maxDepth: 3 })));
  t.throws(() => loads(doc, undefined, budget({ maxDepth: 2 })), { message: /deeper than 2 levels/ });
  const nested = '<marshal><list id="i2"><list id="i3"><list id="i4"/></list><list id="i5"><reference id="i3"/></list></list></marshal>';
  t.notThrows(() => loads(nested, undefined, budget({ maxDepth: 4 })));
  t.throws(() => loads(nested, undefined, budget({ maxDepth: 3 })), { message: /deeper than 3/ }, 'i3 is two levels deep, referenced at depth 3');
});

test('cycles of any length are refused; duplicate ids too', (t) => {
  t.throws(() => loads('<marshal><list id="i2"><list id="i3"><reference id="i2"/></list></list></marshal>'), { message: /cycle/ });
  t.throws(() => loads('<marshal><object id="i2" module="slapos.slap.slap" class="Computer"><tuple><reference id="i2"/></tuple></object></marshal>'), { message: /cycle/ });
  t.throws(() => loads('<marshal><list id="i2"><list id="i3"/><list id="i3"/></list></marshal>'), { message: /defined twice/ });
  t.throws(() => loads('<marshal><list id="i2"><reference id="i9"/></list></marshal>'), { message: /unknown id/ });
});

test('JSON depth is measured outside strings only', (t) => {
  t.false(jsonTooDeep('{"a":[[1]]}', 3));
  t.true(jsonTooDeep('{"a":[[[1]]]}', 3));
  t.false(jsonTooDeep(`{"a":"${'['.repeat(100)}"}`, 3));
  t.false(jsonTooDeep(`{"a":"\\"${'{'.repeat(100)}"}`, 3), 'an escaped quote does not end the string');
  t.true(jsonTooDeep(`{"a":"\\\\"${',{'.repeat(5)}`, 3), 'an escaped backslash does');
  t.true(jsonTooDeep('['.repeat(1_000_000), 64));
});

test('the answer bound is never below the real answer, whatever the stored text', async (t) => {
  const store = new SqliteStore(':memory:');
  t.teardown(() => store.close());
  const settings = { defaultComputer: 'C' };
  const nasty = 'a&b<c>d\re"f\'g é 😀 \u00a0\t\nend&amp;';
  await store.transaction((tx) => node.loadComputer(tx, {
    reference: 'C', partition_list: Array.from({ length: 6 }, (_, i) => ({
      reference: `p${i}`, tap: { name: `tap${i}` }, address_list: [{ addr: `10.0.0.${i}`, netmask: '255.255.255.0' }, { addr: `fd00::${i}`, netmask: 'ffff::' }],
    })),
  }));
  await store.transaction((tx) => node.supply(tx, settings, `/sr/é&<${'x'.repeat(50)}`, 'C', 'available'));
  const request = (title: string, shared: boolean, parameters: Record<string, string>) => store.transaction((tx) => inst.requestInstance(tx, settings, {
    softwareRelease: '/sr/é&<', softwareType: 'default', title, parameters, filter: {}, state: null, shared,
  }));
  await request('root', false, { [nasty]: nasty.repeat(20), plain: 'x'.repeat(1000) });
  await request('other', false, Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, i % 2 ? nasty : 'v'])));
  for (let i = 0; i < 30; i += 1) await request(`front${i}`, true, { url: `https://${nasty}/${i}`, [nasty]: nasty });
  await store.transaction((tx) => inst.setConnection(tx, 'C', 'p0', { [nasty]: nasty.repeat(50), a: '' }, null));
  const answer = await store.read(async (tx) => dumps(await node.computerInformation(tx, settings, 'C')));
  const bound = await store.read((tx) => node.answerBound(tx, 'C'));
  const elements = answer.match(/<[^/]/g)?.length ?? 0;
  t.true(bound.bytes >= answer.length, `bound ${bound.bytes} ≥ answer ${answer.length} bytes`);
  t.true(bound.elements >= elements, `bound ${bound.elements} ≥ answer ${elements} elements`);
  t.true(bound.bytes < 3 * answer.length, `and not absurdly above (${(bound.bytes / answer.length).toFixed(2)}×)`);
  t.log(`bound/answer: ${(bound.bytes / answer.length).toFixed(2)}× bytes, ${(bound.elements / elements).toFixed(2)}× elements`);
});
