// Bad and hostile input: every endpoint answers 4xx (never 500) and the master keeps serving.
import test from 'ava';
import { request } from 'undici';
import { startTestMaster } from '../helpers/master.js';

async function call(url: string, method: 'GET' | 'POST', path: string, form: Record<string, string> | string = {}) {
  const body = typeof form === 'string' ? form : new URLSearchParams(form).toString();
  const res = await request(`${url}${path}${method === 'GET' && body ? `?${body}` : ''}`, {
    method,
    ...(method === 'POST' ? { body, headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}),
  });
  return { status: res.statusCode, body: await res.body.text() };
}

const FORMAT = '<marshal><dictionary id="i2"><string>partition_list</string><list id="i3"><dictionary id="i4"><string>reference</string><string>slappart0</string></dictionary></list><string>reference</string><string>COMP-1234</string></dictionary></marshal>';
const LAUGHS = '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><marshal><dictionary id="i2"><string>x</string><string>&c;</string></dictionary></marshal>';
const XXE = '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><marshal><dictionary id="i2"><string>x</string><string>&x;</string></dictionary></marshal>';

const cases: Array<[string, 'GET' | 'POST', string, Record<string, string> | string, number]> = [
  ['missing computer_id', 'GET', 'getFullComputerInformation', {}, 400],
  ['computer id with a slash', 'GET', 'getFullComputerInformation', { computer_id: '../etc' }, 400],
  ['unknown computer', 'GET', 'getFullComputerInformation', { computer_id: 'COMP-NOPE' }, 404],
  ['repeated field', 'GET', 'getFullComputerInformation', 'computer_id=COMP-1234&computer_id=X', 400],
  ['format: not marshalled', 'POST', 'loadComputerConfigurationFromXML', { xml: 'hello' }, 400],
  ['format: not a dict', 'POST', 'loadComputerConfigurationFromXML', { xml: '<marshal><list id="i2"/></marshal>' }, 400],
  ['format: billion laughs', 'POST', 'loadComputerConfigurationFromXML', { xml: LAUGHS }, 400],
  ['format: bad partition id', 'POST', 'loadComputerConfigurationFromXML', { xml: FORMAT.replace('slappart0', 'a b') }, 400],
  ['supply: bad state', 'POST', 'supplySupply', { url: '/sr', computer_id: 'COMP-1234', state: 'started' }, 400],
  ['supply: url with spaces', 'POST', 'supplySupply', { url: 'a b', computer_id: 'COMP-1234', state: 'available' }, 400],
  ['building: missing url', 'POST', 'buildingSoftwareRelease', { computer_id: 'COMP-1234' }, 400],
  ['available: missing computer', 'POST', 'availableSoftwareRelease', { url: '/sr' }, 400],
  ['error: missing url', 'POST', 'softwareReleaseError', { computer_id: 'COMP-1234' }, 400],
  ['destroyed sr: missing url', 'POST', 'destroyedSoftwareRelease', { computer_id: 'COMP-1234' }, 400],
  ['started: unknown partition', 'POST', 'startedComputerPartition', { computer_id: 'COMP-1234', computer_partition_id: 'nope' }, 404],
  ['stopped: missing partition', 'POST', 'stoppedComputerPartition', { computer_id: 'COMP-1234' }, 400],
  ['instance error: unknown partition', 'POST', 'softwareInstanceError', { computer_id: 'COMP-1234', computer_partition_id: 'nope', error_log: 'x' }, 404],
  // 200 with "Unknown partition 'nope' on 'COMP-1234'", as the reference (nothing changed).
  ['destroyed partition: unknown', 'POST', 'destroyedComputerPartition', { computer_id: 'COMP-1234', computer_partition_id: 'nope' }, 200],
  ['certificate: unknown partition', 'GET', 'getComputerPartitionCertificate', { computer_id: 'COMP-1234', computer_partition_id: 'nope' }, 404],
  ['register: unknown partition', 'GET', 'registerComputerPartition', { computer_reference: 'COMP-1234', computer_partition_reference: 'nope' }, 404],
  ['register: missing args', 'GET', 'registerComputerPartition', {}, 400],
  ['connection: XXE', 'POST', 'setComputerPartitionConnectionXml', { computer_id: 'COMP-1234', computer_partition_id: 'slappart0', connection_xml: XXE }, 400],
  ['connection: unknown shared (ignored, as the reference)', 'POST', 'setComputerPartitionConnectionXml', { computer_id: 'COMP-1234', computer_partition_id: 'slappart0', connection_xml: '<marshal><dictionary id="i2"/></marshal>', slave_reference: '_nope' }, 200],
  ['bang: free partition', 'POST', 'softwareInstanceBang', { computer_id: 'COMP-1234', computer_partition_id: 'slappart0', message: 'x' }, 404],
  ['related: XXE', 'POST', 'updateComputerPartitionRelatedInstanceList', { computer_id: 'COMP-1234', computer_partition_id: 'slappart0', instance_reference_xml: XXE }, 400],
  ['related: not a list', 'POST', 'updateComputerPartitionRelatedInstanceList', { computer_id: 'COMP-1234', computer_partition_id: 'slappart0', instance_reference_xml: '<marshal><string>x</string></marshal>' }, 400],
  ['rename: missing name', 'POST', 'softwareInstanceRename', { computer_id: 'COMP-1234', computer_partition_id: 'slappart0' }, 400],
  ['computerBang: bad id', 'POST', 'computerBang', { computer_id: '<script>' }, 400],
  ['useComputer: entity', 'POST', 'useComputer', { computer_id: 'COMP-1234', use_string: LAUGHS.replace(/marshal/g, 'journal') }, 400],
  ['useComputer: unknown computer', 'POST', 'useComputer', { computer_id: 'COMP-X', use_string: '<journal/>' }, 404],
  ['request: empty title', 'POST', 'requestComputerPartition', { software_release: '/sr', partition_reference: '' }, 400],
  ['request: bad state', 'POST', 'requestComputerPartition', { software_release: '/sr', partition_reference: 't', state: '<marshal><string>running</string></marshal>' }, 400],
  ['request: parameters not a dict', 'POST', 'requestComputerPartition', { software_release: '/sr', partition_reference: 't', partition_parameter_xml: '<marshal><list id="i2"/></marshal>' }, 400],
  ['request: forbidden class', 'POST', 'requestComputerPartition', { software_release: '/sr', partition_reference: 't', filter_xml: '<marshal><object id="i2" module="os" class="system"><tuple/><dictionary id="i3"/></object></marshal>' }, 400],
  ['request: unknown requester', 'POST', 'requestComputerPartition', { software_release: '/sr', partition_reference: 't', computer_id: 'COMP-1234', computer_partition_id: 'nope' }, 404],
  ['request: unknown computer', 'POST', 'requestComputerPartition', { software_release: '/sr', partition_reference: 't', filter_xml: '<marshal><dictionary id="i2"><string>computer_guid</string><string>COMP-X</string></dictionary></marshal>' }, 404],
  ['no open fetcher', 'GET', 'http_proxy/http/example.com/', {}, 404],
  ['no open redirect', 'GET', 'hateoas/', 'mode=traverse&relative_url=http://evil', 400],
];

test('every endpoint rejects bad input with the right 4xx and keeps serving', async (t) => {
  const { url } = await startTestMaster(t, 'COMP-1234', 64 * 1024);
  t.is((await call(url, 'POST', 'loadComputerConfigurationFromXML', { xml: FORMAT })).status, 200);
  for (const [name, method, path, form, status] of cases) {
    const res = await call(url, method, path, form);
    t.is(res.status, status, `${name}: ${res.body.slice(0, 160)}`);
  }
  const big = await call(url, 'POST', 'loadComputerConfigurationFromXML', { xml: `<marshal><string>${'a'.repeat(100_000)}</string></marshal>` });
  t.is(big.status, 413);
  const ok = await call(url, 'GET', 'getFullComputerInformation', { computer_id: 'COMP-1234' });
  t.is(ok.status, 200);
  t.true(ok.body.startsWith('<marshal><object id="i2" module="slapos.slap.slap" class="Computer">'));
});

test('a request with nothing allocatable is 404, and the default computer answers empty before format', async (t) => {
  const { url } = await startTestMaster(t);
  const empty = await call(url, 'GET', 'getFullComputerInformation', { computer_id: 'COMP-1234' });
  t.is(empty.status, 200);
  t.regex(empty.body, /<string>_computer_partition_list<\/string><list id="i4"\/>/);
  const res = await call(url, 'POST', 'requestComputerPartition', { software_release: '/sr', partition_reference: 't' });
  t.is(res.status, 404);
});
