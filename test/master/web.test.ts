// The master's web surface: JSON API (method, validation, error shape),
// /metrics (checked with a strict exposition-format parser) and the status
// page, loaded in headless Chromium.
import test from 'ava';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { request } from 'undici';
import { tempDir } from '../helpers/master.js';
import { WEB_SR, webMaster } from '../helpers/web-fleet.js';

const SR = WEB_SR;
const setup = webMaster;

const post = async (url: string, body: unknown, headers: Record<string, string> = {}) => {
  const res = await request(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.statusCode, type: String(res.headers['content-type']), json: (await res.body.json()) as Record<string, unknown> };
};

test('JSON API: request, get and list instance trees; errors as {status, type, title}', async (t) => {
  const { master } = await setup(t);
  const m = (name: string) => `${master.url}${name}`;
  const made = await post(m('slapos.post.v0.software_instance'), {
    title: 'web', software_release_uri: SR, software_type: 'default', parameters: { a: 'b' },
  });
  t.is(made.status, 200);
  t.like(made.json, { title: 'web', instance_guid: 'web______0', state: 'started', parameters: { a: 'b' }, compute_partition_id: 'slappart0', computer_guid: 'COMP-1', shared: false });
  const nested = await post(m('slapos.post.v0.software_instance'), { title: 'json', software_release_uri: SR, software_type: 'default', parameters: { n: 1 } });
  t.deepEqual(nested.json.parameters, { _: '{"n":1}' }, 'non-string parameters are serialised under "_"');
  t.deepEqual((await post(m('slapos.allDocs.v0.instance_tree_list'), {})).json, { result_list: [{ title: 'web' }, { title: 'json' }] });
  t.like((await post(m('slapos.get.v0.instance_tree'), { title: 'web' })).json, { software_release_uri: SR, ip_list: [['tap0', '10.0.1.0']] });
  t.deepEqual((await post(m('slapos.allDocs.WIP.compute_node_list'), {})).json, { result_list: [{ computer_guid: 'COMP-1' }] });
  t.like(await post(m('slapos.post.v0.software_installation'), { software_release_uri: SR, computer_guid: 'COMP-1' }), { status: 200, json: { type: 'success' } });
  t.deepEqual((await post(m('slapos.allDocs.v0.compute_node_software_installation_list'), { computer_guid: 'COMP-1' })).json,
    { result_list: [{ software_release_uri: SR, state: 'available' }] });
  t.is(((await post(m('slapos.allDocs.v0.compute_node_instance_list'), { computer_guid: 'COMP-1' })).json.result_list as unknown[]).length, 2);

  t.deepEqual((await post(m('slapos.get.v0.instance_tree'), { title: 'nope' })).json, { status: 404, type: 'Not Found', title: 'no instance tree nope' });
  const bad = await post(m('slapos.get.v0.instance_tree'), { title: 'x', extra: 1 });
  t.is(bad.status, 400);
  t.is(bad.json.type, 'Bad Request');
  t.regex(String(bad.json.title), /invalid input/);
  t.is((await post(m('slapos.get.v0.instance_tree'), { title: 'web' }, { accept: 'text/html' })).status, 406);
  t.is((await post(m('slapos.get.v0.instance_tree'), '{not json')).status, 400);
  const get = await request(m('slapos.allDocs.v0.instance_tree_list'));
  t.is(get.statusCode, 405);
  t.like(await get.body.json(), { status: 405, type: 'Method Not Allowed' });
  const full = await post(m('slapos.post.v0.software_instance'), { title: 'third', software_release_uri: SR, software_type: 'default' });
  const none = await post(m('slapos.post.v0.software_instance'), { title: 'fourth', software_release_uri: SR, software_type: 'default' });
  t.is(full.status, 200);
  t.like(none.json, { status: 404, type: 'Not Found' });
});

/** A strict reader of the Prometheus text format (0.0.4): every line must parse. */
function parseExposition(text: string): Map<string, { type: string; samples: Array<{ name: string; labels: Record<string, string>; value: number }> }> {
  const families = new Map<string, { type: string; samples: Array<{ name: string; labels: Record<string, string>; value: number }> }>();
  const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const sample = new RegExp(`^(${NAME})(?:\\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*",?)*)\\})? (\\S+)( -?\\d+)?$`);
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue;
    let m: RegExpMatchArray | null;
    if ((m = line.match(new RegExp(`^# HELP (${NAME}) .*$`)))) continue;
    if ((m = line.match(new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`)))) {
      if (families.has(m[1]!)) throw new Error(`TYPE of ${m[1]} declared twice`);
      families.set(m[1]!, { type: m[2]!, samples: [] });
      continue;
    }
    if (line.startsWith('#')) throw new Error(`bad comment line: ${line}`);
    if (!(m = line.match(sample))) throw new Error(`bad sample line: ${line}`);
    const value = Number(m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : m[3]);
    if (Number.isNaN(value) && m[3] !== 'NaN') throw new Error(`bad value in: ${line}`);
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    const family = families.get(m[1]!) ?? families.get(m[1]!.replace(/_(bucket|sum|count)$/, ''));
    if (!family) throw new Error(`sample before its TYPE: ${line}`);
    family.samples.push({ name: m[1]!, labels, value });
  }
  return families;
}

test('/metrics is valid Prometheus text with requests, latency, computers, partitions and usage', async (t) => {
  const { master, client } = await setup(t);
  await client.requestComputerPartition(SR, 'a');
  await client.useComputer('COMP-1', '<journal><transaction type="Sale Packing List"><movement><reference>slappart0</reference><resource>cpu</resource><quantity>2.5</quantity></movement></transaction></journal>');
  await client.getFullComputerInformation('COMP-1');
  await t.throwsAsync(client.getFullComputerInformation('COMP-NONE'));
  const res = await request(`${master.url}metrics`);
  t.is(res.statusCode, 200);
  t.regex(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const families = parseExposition(await res.body.text());
  const samples = (name: string) => families.get(name)?.samples ?? [];
  t.is(families.get('slapos_master_requests_total')?.type, 'counter');
  t.truthy(samples('slapos_master_requests_total').find((s) => s.labels.endpoint === '/getFullComputerInformation' && s.labels.status === '200' && s.value === 1));
  t.truthy(samples('slapos_master_requests_total').find((s) => s.labels.endpoint === '/getFullComputerInformation' && s.labels.status === '404'));
  const latency = samples('slapos_master_request_duration_seconds').filter((s) => s.labels.endpoint === '/requestComputerPartition');
  const buckets = latency.filter((s) => s.name.endsWith('_bucket'));
  t.true(buckets.every((b, i) => i === 0 || b.value >= buckets[i - 1]!.value), 'buckets are cumulative');
  t.is(buckets.at(-1)?.labels.le, '+Inf');
  t.is(latency.find((s) => s.name.endsWith('_count'))?.value, buckets.at(-1)?.value);
  t.deepEqual(samples('slapos_master_computers').map((s) => s.value), [1]);
  t.deepEqual(samples('slapos_master_partitions').map((s) => [s.labels.slap_state, s.labels.requested_state, s.value]),
    [['busy', 'started', 1], ['free', 'started', 2]]);
  t.is(samples('slapos_master_usage_reports_received_total')[0]?.value, 1);
  t.is(samples('slapos_master_usage_reports_stored')[0]?.value, 1);
  t.throws(() => parseExposition('bad line here\n'), { message: /bad sample line/ }, 'the parser is strict');
});

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

(CHROMIUM ? test : test.skip)(`status page in headless Chromium shows a requested instance, escaped${CHROMIUM ? '' : ' (skipped: chromium not installed, apt-get install chromium)'}`, async (t) => {
  const { master, client } = await setup(t);
  await client.supplySupply(SR, 'COMP-1');
  await client.softwareReleaseError(SR, 'COMP-1', 'buildout failed: <boom>');
  await client.requestComputerPartition(SR, 'my-shop');
  await client.requestComputerPartition(SR, '<img src=x onerror=alert(1)>');
  await client.useComputer('COMP-1', '<journal><transaction type="Sale Packing List"><movement><reference>slappart0</reference><resource>cpu</resource><quantity>2.5</quantity></movement></transaction></journal>');
  const profile = tempDir(t);
  const run = await execa(CHROMIUM as string, [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', `--user-data-dir=${profile}`, '--dump-dom', `${master.url}status`,
  ], { reject: false, timeout: 60_000 });
  t.is(run.exitCode, 0, run.stderr.slice(-2000));
  const dom = run.stdout;
  t.regex(dom, /<title>SlapOS master status<\/title>/);
  t.regex(dom, /<td class="instance">my-shop<\/td>/);
  t.regex(dom, /buildout failed: &lt;boom&gt;/);
  t.regex(dom, /&lt;img src=x onerror=alert\(1\)&gt;/);
  t.notRegex(dom, /<img/, 'titles are text, never markup');
  t.notRegex(dom, /<script/);
  t.regex(dom, /cpu<\/td><td>2\.5/);
});
