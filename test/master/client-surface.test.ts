// The client-facing surface beyond the recordings: HATEOAS built from the
// master's data (several computers, child, destroyed and removed shared
// instances), 405 + Allow, getRunId, the ignored publish to a removed shared
// instance, and multimaster failures (refused, unreachable: never allocated here).
import test, { type ExecutionContext } from 'ava';
import { request } from 'undici';
import { parseQuery, pyJson } from '../../src/master/hateoas.js';
import { decide, forwardedForm, parseMultimasterSections, unknownMultimasterKeys } from '../../src/master/multimaster.js';
import { buildMaster } from '../../src/master/server.js';
import { parseSoftwareProductList } from '../../src/master/software-product.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { SlapClient } from '../../src/slap/client.js';
import { SlapHttpError, SlapNotFoundError } from '../../src/slap/errors.js';
import { computer } from '../helpers/semantics-suite.js';
import { listenOnLoopback, tempDir } from '../helpers/master.js';
import path from 'node:path';

const SR = '/opt/sr/trivial/software.cfg';

async function master(t: ExecutionContext, options: { multimaster?: Parameters<typeof buildMaster>[0]['multimaster']; runId?: string } = {}) {
  const store = new SqliteStore(path.join(tempDir(t), 'proxy.db'));
  const app = await buildMaster({ store, defaultComputer: 'COMP-A', ...options });
  t.teardown(() => app.close());
  const port = await listenOnLoopback(app);
  const url = `http://127.0.0.1:${port}/`;
  const client = new SlapClient(url);
  t.teardown(() => client.close());
  return { url, client, store };
}

/** What the slapos client does for `service|computer list|info`: root, template, search, traverse, follow. */
async function walk(base: string, query: string, select: string): Promise<{ contents: Array<Record<string, unknown>>; document?: unknown }> {
  const root = await request(`${base}hateoas`);
  await root.body.text();
  const rootDoc = await (await request(String(root.headers.location))).body.json() as { _links: { raw_search: { href: string }; traverse: { href: string } } };
  const searchUrl = rootDoc._links.raw_search.href.replace('{query}', encodeURIComponent(query)).replace('{select_list}', select);
  const found = await (await request(searchUrl)).body.json() as { _embedded: { contents: Array<Record<string, unknown>> } };
  const contents = found._embedded.contents;
  if (contents.length !== 1) return { contents };
  const traverse = rootDoc._links.traverse.href.replace('{relative_url}', encodeURIComponent(String(contents[0]?.relative_url))).replace('{view}', 'slaposjs_view');
  const hop = await request(traverse);
  await hop.body.text();
  const document = await (await request(new URL(String(hop.headers.location), base).toString())).body.json();
  return { contents, document };
}
const trees = 'portal_type:"Instance Tree" AND validation_state:validated';
const nodes = 'portal_type:"Compute Node" AND validation_state:validated';

test('HATEOAS is built from the data: two computers, children, destroyed and removed shared instances', async (t) => {
  const { url, client } = await master(t);
  await client.loadComputerConfigurationFromXML(computer('COMP-A', 3));
  await client.loadComputerConfigurationFromXML(computer('COMP-B', 3));
  const a = await client.requestComputerPartition(SR, 'on-a', { parameters: { x: 'é"<' } });
  await client.requestComputerPartition(SR, 'on-b', { filter: { computer_guid: 'COMP-B' } });
  await client.requestComputerPartition(SR, 'child', { requester: { computerId: 'COMP-A', partitionId: a.partitionId ?? '' } });
  await client.requestComputerPartition(SR, 'gone');
  await client.requestComputerPartition(SR, 'gone', { state: 'destroyed' });
  await client.requestComputerPartition(SR, 'front', { shared: true, parameters: { y: '1' } });
  await client.requestComputerPartition(SR, 'front-b', { shared: true, filter: { computer_guid: 'COMP-B' } });
  await client.requestComputerPartition(SR, 'front-gone', { shared: true });
  await client.requestComputerPartition(SR, 'front-gone', { shared: true, state: 'destroyed' });
  await client.setComputerPartitionConnectionXml('COMP-A', a.partitionId ?? '', { 'front-url': 'http://f/' }, '_front');

  const list = await walk(url, trees, 'title,url_string');
  t.deepEqual(list.contents.map((r) => r.title), ['on-a', 'gone', 'on-b', 'front', 'front-b'],
    'roots of every computer (one being destroyed until freed), then root shared instances of both same-named hosts');
  t.is(list.contents.find((r) => r.title === 'on-b')?.computer_reference, 'COMP-B');
  const gone = await walk(url, `${trees} AND title:="gone"`, 'title,relative_url');
  t.is((gone.document as { _embedded: { _view: { my_slap_state: { default: string } } } })._embedded._view.my_slap_state.default, 'destroyed');
  // Once the node has freed it, it no longer exists.
  const gonePartition = (await client.getFullComputerInformation('COMP-A')).partitions.find((p) => p.parameters?.instance_title === 'gone');
  t.is(await client.destroyedComputerPartition('COMP-A', gonePartition?.partitionId ?? ''), 'OK');

  // A title with a space, a slash, a quote and non-ASCII: escaped in the query, percent-encoded in relative_url.
  await client.requestComputerPartition(SR, 'my app/1 "é"', { filter: { computer_guid: 'COMP-B' } });
  const odd = await walk(url, `${trees} AND title:="my app/1 \\"é\\""`, 'title,relative_url');
  t.is((odd.document as { _embedded: { _view: { my_reference: { default: string } } } })._embedded._view.my_reference.default, 'my app/1 "é"');
  const info = await walk(url, `${trees} AND title:="on-b"`, 'title,relative_url');
  const view = (info.document as { _embedded: { _view: Record<string, { default: unknown }> } })._embedded._view;
  t.is(view.my_reference?.default, 'on-b');
  t.is(view.my_slap_state?.default, 'started');

  const shared = await walk(url, `${trees} AND title:="front"`, 'title,relative_url');
  const sview = (shared.document as { _embedded: { _view: Record<string, { default: unknown }> } })._embedded._view;
  t.is(sview.my_root_slave?.default, 1);
  t.regex(String(sview.my_connection_parameter_list?.default), /front-url/);
  t.is(sview.my_text_content?.default, "<?xml version='1.0' encoding='utf-8'?>\n<instance>\n  <parameter id=\"y\">1</parameter>\n</instance>\n");

  for (const title of ['child', 'gone', 'front-gone', 'nope']) {
    // (child: not an instance tree; gone: freed; front-gone: removed from its host; nope: never existed)
    t.deepEqual((await walk(url, `${trees} AND title:="${title}"`, 'title,relative_url')).contents, [], `${title} is not an instance tree`);
  }
  const computers = await walk(url, nodes, 'title,reference');
  t.deepEqual(computers.contents.map((r) => r.reference), ['COMP-A', 'COMP-B']);
  const compB = await walk(url, `${nodes} AND reference:="COMP-B"`, 'reference,relative_url');
  t.is((compB.document as { _links: { type: { name: string } } })._links.type.name, 'Computer');
  t.deepEqual((await walk(url, `${nodes} AND reference:="COMP-C"`, 'reference,relative_url')).contents, []);

  // Queries the reference does not understand, and traverse outside /hateoas/, are 400.
  for (const q of ['mode=search&query=portal_type%3A%22Person%22', 'mode=traverse&relative_url=http%3A%2F%2Fevil%2F&view=x', 'mode=nope']) {
    const res = await request(`${url}hateoas/?${q}`);
    t.is(res.statusCode, 400, q);
    await res.body.text();
  }
  const missing = await request(`${url}hateoas/partitions/nope`);
  t.is(missing.statusCode, 404);
  await missing.body.text();
});

test('HATEOAS pure parts: the four queries with escapes, Python-compatible JSON', (t) => {
  t.deepEqual(parseQuery(`${trees} AND title:="a \\"b\\" c"`), { kind: 'instances', title: 'a "b" c' });
  t.deepEqual(parseQuery(nodes), { kind: 'computers' });
  t.regex(String(parseQuery(`${trees} AND title:=unquoted`)), /^Unhandled query/);
  t.regex(String(parseQuery(`${trees} AND title:="bare"quote"`)), /^Unhandled query/);
  t.is(pyJson({ b: 'é\u007f', a: [1, null, true] }), '{"a":[1,null,true],"b":"\\u00e9\\u007f"}');
});

test('405 with Allow for a known route asked with another method; GET /getRunId; 404 otherwise', async (t) => {
  const { url } = await master(t, { runId: 'r'.repeat(32) });
  const wrong = await request(`${url}supplySupply`);
  t.is(wrong.statusCode, 405);
  t.is(wrong.headers.allow, 'POST');
  t.regex(await wrong.body.text(), /405 Method Not Allowed/);
  const wrongGet = await request(`${url}getFullComputerInformation`, { method: 'POST', body: '', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  t.is(wrongGet.statusCode, 405);
  t.is(wrongGet.headers.allow, 'GET, HEAD');
  await wrongGet.body.text();
  const run = await request(`${url}getRunId`);
  t.is(await run.body.text(), 'r'.repeat(32));
  const unknown = await request(`${url}noSuchRoute`);
  t.is(unknown.statusCode, 404);
  await unknown.body.text();
});

test('a publish for a shared instance that no longer exists is ignored (200) and stores nothing', async (t) => {
  const { client, store } = await master(t);
  await client.loadComputerConfigurationFromXML(computer('COMP-A', 2));
  const host = await client.requestComputerPartition(SR, 'host');
  await client.setComputerPartitionConnectionXml('COMP-A', host.partitionId ?? '', { a: 'b' }, '_removed');
  t.is(await store.read((tx) => tx.getSlave('COMP-A', '_removed')), undefined);
  t.is((await store.read((tx) => tx.getPartition('COMP-A', host.partitionId ?? '')))?.connection_xml, null);
});

test('multimaster: unlisted master refused (404, nothing allocated); unreachable listed master is a clear 502, never a local allocation', async (t) => {
  const dead = 'http://127.0.0.1:9/';
  const { client, url } = await master(t, { multimaster: [{ url: dead, softwareReleases: ['/opt/sr/forwarded/software.cfg'] }] });
  await client.loadComputerConfigurationFromXML(computer('COMP-A', 2));
  const refused = await t.throwsAsync(client.requestComputerPartition(SR, 'x', { filter: { master_url: 'http://127.0.0.1:9' } }));
  t.true(refused instanceof SlapNotFoundError);
  for (const attempt of [
    client.requestComputerPartition(SR, 'y', { filter: { master_url: dead } }),
    client.requestComputerPartition('/opt/sr/forwarded/software.cfg', 'z'),
  ]) {
    const error = await t.throwsAsync(attempt);
    t.true(error instanceof SlapHttpError && error.status === 502, String(error));
    t.regex(String(error), /forwarding to master http:\/\/127\.0\.0\.1:9\/ failed/);
  }
  const info = await client.getFullComputerInformation('COMP-A');
  t.true(info.partitions.every((p) => p.softwareRelease === null), 'nothing allocated locally');
  // Our own URL as master_url: allocated here (the self-check finds our run id).
  const self = await client.requestComputerPartition(SR, 'self', { filter: { master_url: url } });
  t.is(self.partitionId, 'slappart0');
  // Reached under another name (a recorder, a load balancer): the GET /getRunId probe finds us.
  const form = new URLSearchParams({
    software_release: SR, partition_reference: 'self2', partition_parameter_xml: '<marshal><dictionary id="i2"/></marshal>',
    filter_xml: `<marshal><dictionary id="i2"><string>master_url</string><string>${url}</string></dictionary></marshal>`,
    software_type: 'default', state: '<marshal><none/></marshal>', shared_xml: '<marshal><bool>0</bool></marshal>',
  });
  const viaAlias = await request(`${url}requestComputerPartition`, {
    method: 'POST', body: form.toString(), headers: { host: 'alias.invalid:80', 'content-type': 'application/x-www-form-urlencoded' },
  });
  t.is(viaAlias.statusCode, 200, await viaAlias.body.text());
  t.is((await client.registerComputerPartition('COMP-A', 'slappart1')).parameters?.instance_title, 'self2');
});

test('multimaster: sections are checked; the forwarded form carries the section identity', async (t) => {
  const section = (values: Record<string, string>) => new Map([['multimaster/https://m.example/', new Map(Object.entries(values))]]);
  t.throws(() => parseMultimasterSections(section({ key: '/k', cert: '/c' })), { message: /software_release_list is required/ });
  t.throws(() => parseMultimasterSections(section({ software_release_list: '' })), { message: /https master needs key and cert/ });
  t.throws(() => parseMultimasterSections(section({ software_release_list: '', key: '/k', cert: '/c', computer: 'C' })), { message: /computer and partition/ });
  t.deepEqual(unknownMultimasterKeys(section({ software_release_list: '', bogus: '1' })), ['[multimaster/https://m.example/] bogus']);
  const [entry] = parseMultimasterSections(section({ software_release_list: '\n/a\n/b', key: '/k', cert: '/c', computer: 'C', partition: 'p' }));
  t.deepEqual(entry?.softwareReleases, ['/a', '/b']);
  const form = forwardedForm(entry!, { softwareRelease: '/a', softwareType: 'default', title: 't', parameters: {}, filter: {}, state: null, shared: false });
  t.is(form.partition_reference, 'user_t');
  t.is(form.computer_id, 'C');
  t.is(form.computer_partition_id, 'p');
  t.is(form.filter_xml, '<marshal><dictionary id="i2"/></marshal>', 'no source_instance_id when requesting as a partition');
  // Already allocated here: stays here even when the release is listed.
  const d = await decide([entry!], { filter: {}, softwareRelease: '/a' }, async () => true, async () => false);
  t.deepEqual(d, { kind: 'local' });
});

test('software_product_list parsing as the reference: "<reference> <url>" per line', (t) => {
  t.deepEqual([...parseSoftwareProductList('\n trivial /opt/sr/trivial/software.cfg\nother /o\n')], [['trivial', '/opt/sr/trivial/software.cfg'], ['other', '/o']]);
  t.throws(() => parseSoftwareProductList('a b c'), { message: /line 1/ });
  t.throws(() => parseSoftwareProductList('onlyone'), { message: /line 1/ });
});

test('supply to a computer no node registered: 404 naming it, nothing stored; the configured computer_id and a registered one are accepted', async (t) => {
  const { client, store } = await master(t);
  const error = await t.throwsAsync(client.supplySupply(SR, 'COMP-TYPO'));
  t.true(error instanceof SlapNotFoundError, String(error));
  t.regex(String(error?.message), /unknown computer COMP-TYPO/);
  t.deepEqual(await store.transaction((tx) => tx.listSoftware('COMP-TYPO')), []);
  t.is(await client.supplySupply(SR, 'COMP-A'), `Supplied '${SR}' to be available`, 'the default computer, before its first format');
  await client.loadComputerConfigurationFromXML(computer('COMP-B', 1));
  t.is(await client.supplySupply(SR, 'COMP-B'), `Supplied '${SR}' to be available`);
});
