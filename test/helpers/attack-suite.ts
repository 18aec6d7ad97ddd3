// The master under attack (issue 15): recorded attack bodies
// (test/fixtures/attacks/) and generated big ones are refused with a 4xx
// within a second, without memory growth, without changing what the
// database serves, and every computer stays readable by a node. Defined once,
// run on each storage engine (attacks.test.ts: SQLite, postgres.test.ts).
import test, { type ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { SlapClient } from '../../src/slap/client.js';
import { dumps } from '../../src/slap/marshal-encode.js';
import { startTestMaster, type StoreFactory } from './master.js';
import { fixturesDir } from './paths.js';
import { computer } from './semantics-suite.js';

const COMP = 'COMP-1234';
export const attack = (name: string) => readFileSync(path.join(fixturesDir, 'attacks', name), 'utf8');

export async function call(url: string, method: 'GET' | 'POST', endpoint: string, form: Record<string, string>, json?: string) {
  const body = json ?? new URLSearchParams(form).toString();
  const started = performance.now();
  const res = await request(`${url}${endpoint}${method === 'GET' ? `?${new URLSearchParams(form).toString()}` : ''}`, {
    method,
    ...(method === 'POST' ? { body, headers: { 'content-type': json === undefined ? 'application/x-www-form-urlencoded' : 'application/json' } } : {}),
  });
  const text = await res.body.text();
  return { status: res.statusCode, body: text, ms: performance.now() - started };
}

/** A 2-level format whose partitions all reference one big address list (the probe's 2,000,000 rows). */
export function addressAmplification(partitions: number, addresses: number): string {
  const list = Array.from({ length: addresses }, (_, a) =>
    `<dictionary id="a${a}"><string>addr</string><string>10.${a >> 16}.${(a >> 8) & 255}.${a & 255}</string></dictionary>`).join('');
  const parts = Array.from({ length: partitions }, (_, p) => `<dictionary id="p${p}"><string>reference</string><string>slappart${p}</string>` +
    `<string>address_list</string>${p === 0 ? `<list id="al">${list}</list>` : '<reference id="al"/>'}</dictionary>`).join('');
  return `<marshal><dictionary id="i2"><string>reference</string><string>${COMP}</string><string>partition_list</string><list id="i3">${parts}</list></dictionary></marshal>`;
}

/** A small seeded PRNG (mulberry32): the fuzz cases are the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** One random mutation of a marshalled document, aimed at the decoder: references, ids, nesting, markup. */
export function mutate(doc: string, random: () => number): string {
  const at = Math.floor(random() * doc.length);
  const ids = [...doc.matchAll(/id="([^"]*)"/g)].map((m) => m[1] ?? '');
  const anyId = () => ids[Math.floor(random() * ids.length)] ?? 'i2';
  const span = Math.floor(random() * 200);
  switch (Math.floor(random() * 8)) {
    case 0: return doc.slice(0, at) + '<>&"\'/;=\ud800\u0000'[Math.floor(random() * 10)] + doc.slice(at + 1);
    case 1: return doc.slice(0, at) + doc.slice(at + span);
    case 2: return doc.slice(0, at) + doc.slice(at, at + span).repeat(2 + Math.floor(random() * 50)) + doc.slice(at + span);
    case 3: return doc.replace(/<\/(list|dictionary)>/, (m) => `${`<reference id="${anyId()}"/>`.repeat(1 + Math.floor(random() * 4))}${m}`);
    case 4: return doc.replace(/id="[^"]*"/, `id="${anyId()}"`);
    case 5: {
      // A chain of lists each holding a reference to the previous one: deep once expanded, flat on the wire.
      const n = 10 + Math.floor(random() * 100);
      const chain = Array.from({ length: n }, (_, k) => `<list id="z${k}">${k ? `<reference id="z${k - 1}"/>` : ''}</list>`).join('');
      return doc.replace(/<\/list>/, `${chain}</list>`);
    }
    case 6: return doc.slice(0, at);
    default: return doc.replace(/<string>[^<]*<\/string>/, `<string>${'&amp;'.repeat(1000)}</string>`);
  }
}

/** Registers the attack tests, titled with `prefix`, on masters whose store `openStore` makes (SQLite by default). */
export function defineAttacks(prefix: string, openStore?: StoreFactory): void {
  async function setup(t: ExecutionContext, partitions = 4) {
    const master = await startTestMaster(t, COMP, undefined, openStore);
    const client = new SlapClient(master.url);
    t.teardown(() => client.close());
    await client.loadComputerConfigurationFromXML(computer(COMP, partitions));
    /** Everything a node and a user read: must not change when an attack is refused. */
    const snapshot = async () => [
      (await call(master.url, 'GET', 'getFullComputerInformation', { computer_id: COMP })).body,
      (await call(master.url, 'GET', 'slapos-node/instances', {})).body,
    ];
    return { url: master.url, client, snapshot };
  }

  /** Sends one hostile request; checks it is refused with `status` within a second and leaves memory and data as they were. */
  async function refused(t: ExecutionContext, ctx: Awaited<ReturnType<typeof setup>>, name: string, status: number,
    send: () => ReturnType<typeof call>) {
    const before = await ctx.snapshot();
    const rss = process.memoryUsage().rss;
    const res = await send();
    t.is(res.status, status, `${name}: ${res.body.slice(0, 200)}`);
    t.true(res.ms < 1000, `${name} answered in ${Math.round(res.ms)} ms`);
    const grown = (process.memoryUsage().rss - rss) / 2 ** 20;
    t.true(grown < 150, `${name}: RSS grew by ${grown.toFixed(0)} MiB`);
    t.deepEqual(await ctx.snapshot(), before, `${name} changed nothing`);
    // The node can still read its computer (with its own client limits).
    t.true((await ctx.client.getFullComputerInformation(COMP)).partitions.length > 0, `${name}: the computer still answers`);
    return res;
  }

  test.serial(`${prefix}reference amplification, self and deep references are 400 within a second and store nothing`, async (t) => {
    const ctx = await setup(t);
    const root = await ctx.client.requestComputerPartition('/sr/a', 'root');
    const part = { computer_id: COMP, computer_partition_id: root.partitionId ?? '' };
    for (const name of ['reference-laughs.xml', 'self-reference.xml', 'reference-depth.xml']) {
      const res = await refused(t, ctx, name, 400, () => call(ctx.url, 'POST', 'setComputerPartitionConnectionXml', { ...part, connection_xml: attack(name) }));
      t.regex(res.body, /expands|cycle|itself/, name);
      await refused(t, ctx, `${name} as parameters`, 400, () => call(ctx.url, 'POST', 'requestComputerPartition', {
        software_release: '/sr/a', software_type: 'default', partition_reference: 'root', partition_parameter_xml: attack(name),
      }));
    }
    // The same on the shared-instance path and in a format.
    await refused(t, ctx, 'laughs in a format', 400, () => call(ctx.url, 'POST', 'loadComputerConfigurationFromXML', { xml: attack('reference-laughs.xml') }));
    // A legitimate shared reference (one dict used twice, as xml_marshaller writes it) still works.
    const shared = '<marshal><dictionary id="i2"><string>a</string><dictionary id="i3"><string>k</string><string>v</string></dictionary>' +
      '<string>b</string><reference id="i3"/></dictionary></marshal>';
    t.is((await call(ctx.url, 'POST', 'setComputerPartitionConnectionXml', { ...part, connection_xml: shared })).status, 200);
  });

  test.serial(`${prefix}a format amplified into network rows is 400 within a second and writes no row`, async (t) => {
    const ctx = await setup(t);
    await refused(t, ctx, 'format-address-amplification.xml', 400, () =>
      call(ctx.url, 'POST', 'loadComputerConfigurationFromXML', { xml: attack('format-address-amplification.xml') }));
    // The probe's size: 2,000 partitions × 1,000 addresses = 2,000,000 rows from ~0.2 MB.
    const big = addressAmplification(2000, 1000);
    t.true(big.length < 1_000_000);
    await refused(t, ctx, '2,000,000 rows', 400, () => call(ctx.url, 'POST', 'loadComputerConfigurationFromXML', { xml: big }));
  });

  test.serial(`${prefix}a write that would make the computer unservable is refused; the computer stays readable`, async (t) => {
    const ctx = await setup(t, 8);
    // 400,000 "&": 2 MB stored, 3.6 MB once escaped twice in the answer; the 5th makes it > 16 MiB.
    const heavy = dumps({ blob: '&'.repeat(400_000) });
    const statuses: number[] = [];
    for (let i = 0; i < 6; i += 1) {
      const inst = await ctx.client.requestComputerPartition('/sr/a', `heavy${i}`);
      const res = await call(ctx.url, 'POST', 'setComputerPartitionConnectionXml', {
        computer_id: COMP, computer_partition_id: inst.partitionId ?? '', connection_xml: heavy,
      });
      statuses.push(res.status);
      if (res.status !== 200) t.regex(res.body, /would become up to \d+ bytes/);
    }
    t.deepEqual(statuses, [200, 200, 200, 200, 413, 413]);
    const info = await ctx.client.getFullComputerInformation(COMP);
    t.is(info.partitions.filter((p) => p.connectionParameters?.blob).length, 4, 'the refused writes stored nothing');
    // One value alone past the per-instance bound: 413 before touching the computer.
    const huge = await call(ctx.url, 'POST', 'setComputerPartitionConnectionXml', {
      computer_id: COMP, computer_partition_id: 'slappart0', connection_xml: dumps({ blob: 'a'.repeat(2_200_000) }),
    });
    t.is(huge.status, 413);
    t.regex(huge.body, /more than 2097152/);
    t.is((await call(ctx.url, 'POST', 'supplySupply', { url: '/sr/b', computer_id: COMP, state: 'available' })).status, 200, 'small writes still pass');
  });

  test.serial(`${prefix}a partition sets connection parameters only for the shared instances it hosts`, async (t) => {
    const ctx = await setup(t, 4);
    const { client, url } = ctx;
    t.is((await client.requestComputerPartition('/sr/a', 'h0')).partitionId, 'slappart0');
    t.is((await client.requestComputerPartition('/sr/b', 'h1')).partitionId, 'slappart1');
    t.is((await client.requestComputerPartition('/sr/c', 'a')).partitionId, 'slappart2');
    t.is((await client.requestComputerPartition('/sr/c', 'a_b')).partitionId, 'slappart3');
    t.is((await client.requestComputerPartition('/sr/b', 'sharedX', { shared: true })).partitionId, 'slappart1');
    const hijack = { computer_id: COMP, computer_partition_id: 'slappart0', connection_xml: dumps({ hijacked: 'yes' }), slave_reference: '_sharedX' };
    await refused(t, ctx, 'publishing for a shared instance hosted elsewhere', 403, () => call(url, 'POST', 'setComputerPartitionConnectionXml', hijack));
    t.deepEqual((await client.requestComputerPartition('/sr/b', 'sharedX', { shared: true })).connectionParameters, {});
    // The host publishes; the requester sees it; hosted_by did not move.
    await client.setComputerPartitionConnectionXml(COMP, 'slappart1', { url: 'https://front' }, '_sharedX');
    t.deepEqual((await client.requestComputerPartition('/sr/b', 'sharedX', { shared: true })).connectionParameters, { url: 'https://front' });
    t.is((await call(url, 'POST', 'setComputerPartitionConnectionXml', hijack)).status, 403);
    // Unknown shared instance: ignored (200, as the reference: a publish racing its removal), nothing stored.
    t.is((await call(url, 'POST', 'setComputerPartitionConnectionXml', { ...hijack, slave_reference: '_nope' })).status, 200);
    // "<tree>_<title>" collides when titles hold "_": tree "a" asks "b_c", tree "a_b" asks "c" → both "a_b_c".
    await client.requestComputerPartition('/sr/b', 'b_c', { shared: true, parameters: { owner: 'a' }, requester: { computerId: COMP, partitionId: 'slappart2' } });
    const collide = await call(url, 'POST', 'requestComputerPartition', {
      software_release: '/sr/b', software_type: 'default', partition_reference: 'c', partition_parameter_xml: dumps({ owner: 'a_b' }),
      filter_xml: dumps({}), state: dumps(null), shared_xml: dumps(true), computer_id: COMP, computer_partition_id: 'slappart3',
    });
    t.is(collide.status, 403, collide.body);
    const host = await client.registerComputerPartition(COMP, 'slappart1');
    const list = host.parameters?.slave_instance_list as Array<Record<string, unknown>>;
    t.is(list.find((s) => s.slave_reference === 'a_b_c')?.owner, 'a', 'the first tree keeps its shared instance');
    // Renaming a shared instance by reference is refused; naming another computer's partition finds nothing.
    t.is((await call(url, 'POST', 'softwareInstanceRename', { computer_id: COMP, computer_partition_id: 'slappart1', new_name: 'x', slave_reference: 'a_b_c' })).status, 400);
    t.is((await call(url, 'POST', 'setComputerPartitionConnectionXml', { ...hijack, computer_id: 'COMP-OTHER' })).status, 404);
  });

  test.serial(`${prefix}fuzz: 300 mutated marshalled bodies are all answered below 500, each within a second`, async (t) => {
    const ctx = await setup(t, 4);
    await ctx.client.requestComputerPartition('/sr/a', 'root');
    await ctx.client.requestComputerPartition('/sr/a', 'front', { shared: true });
    const seeds = [
      ['setComputerPartitionConnectionXml', 'connection_xml', dumps({ a: { k: 'v', l: [1, 2, { x: 'y' }] }, b: 'c' })],
      ['requestComputerPartition', 'partition_parameter_xml', dumps({ p: 'v', q: ['x', ['y', ['z']]] })],
      ['loadComputerConfigurationFromXML', 'xml', dumps(computer(COMP, 4))],
    ] as const;
    const random = prng(15);
    const statuses = new Map<number, number>();
    const started = performance.now();
    for (let i = 0; i < 300; i += 1) {
      const [endpoint, field, seed] = seeds[i % seeds.length] as (typeof seeds)[number];
      let doc: string = seed;
      for (let m = 1 + Math.floor(random() * 3); m > 0; m -= 1) doc = mutate(doc, random);
      const form: Record<string, string> = endpoint === 'requestComputerPartition'
        ? { software_release: '/sr/a', software_type: 'default', partition_reference: 'root', [field]: doc }
        : endpoint === 'setComputerPartitionConnectionXml'
          ? { computer_id: COMP, computer_partition_id: 'slappart0', [field]: doc, ...(i % 2 ? { slave_reference: '_front' } : {}) }
          : { [field]: doc };
      const res = await call(ctx.url, 'POST', endpoint, form);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status >= 500 || res.ms >= 1000) t.fail(`${endpoint} case ${i}: ${res.status} in ${Math.round(res.ms)} ms: ${res.body.slice(0, 200)}\n${doc.slice(0, 300)}`);
    }
    t.log(`statuses: ${JSON.stringify(Object.fromEntries(statuses))} in ${Math.round(performance.now() - started)} ms`);
    t.true([...statuses.keys()].every((s) => s < 500));
    t.true((await ctx.client.getFullComputerInformation(COMP)).partitions.length > 0, 'the computer still answers');
  });

  test.serial(`${prefix}JSON nested past the depth limit is 400 within a second; normal JSON still works`, async (t) => {
    const ctx = await setup(t);
    const deep = (n: number) => `{"title":"j","software_release_uri":"/sr/a","software_type":"default","parameters":{"x":${'['.repeat(n)}${']'.repeat(n)}}}`;
    for (const depth of [100, 10_000, 1_000_000]) {
      const res = await refused(t, ctx, `JSON ${depth} deep`, 400, () => call(ctx.url, 'POST', 'slapos.post.v0.software_instance', {}, deep(depth)));
      t.regex(res.body, /deeper than 64/);
    }
    const ok = await call(ctx.url, 'POST', 'slapos.post.v0.software_instance', {}, deep(10));
    t.is(ok.status, 200, ok.body);
    // A control character SLAP cannot carry is the caller's error (400), not the master's (500).
    const control = await call(ctx.url, 'POST', 'slapos.post.v0.software_instance', {}, '{"title":"c","software_release_uri":"/sr/a","software_type":"default","parameters":{"x":"a\\u0001b"}}');
    t.is(control.status, 400, control.body);
    // Brackets inside strings are text, not nesting.
    const text = await call(ctx.url, 'POST', 'slapos.post.v0.software_instance', {}, `{"title":"k","software_release_uri":"/sr/a","software_type":"default","parameters":{"x":"${'['.repeat(1000)}\\""}}`);
    t.is(text.status, 200, text.body);
  });
}
