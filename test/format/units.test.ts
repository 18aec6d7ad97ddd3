// Pure parts of format: address derivation, the state file and the report body, the user database plan.
import test from 'ava';
import { readFileSync, mkdirSync, copyFileSync, writeFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import {
  allocateIpv4, chooseBase6, format4, format6, parse4, parse6, parseCidr4, partitionAddress6, rangeDict, subRange6, tapIpv6,
} from '../../src/format/addressing.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dumpsState, prettyXml, samePlain, storedFromJson, type Dict, type MarshalValue } from '../../src/format/computer-xml.js';
import { loadsState } from '../../src/format/state-file.js';
import { dumps } from '../../src/slap/marshal-encode.js';
import { loads } from '../../src/slap/marshal-decode.js';
import type { PyValue } from '../../src/slap/pyvalue.js';
import { SlapClient } from '../../src/slap/client.js';
import { sortedJson } from '../../src/format/computer.js';
import { parseReportRecord, REPORT_REFRESH_MS, reportNeeded, sentDigest, sha256, stateFilesRecorded, type ReportRecord } from '../../src/format/report-record.js';
import { parseDbFile, parseLoginDefs, planUsers, serializeDbFile, type UserDb } from '../../src/users/db.js';
import { readUserDb, withLockedUserDb } from '../../src/users/apply.js';
import { tempDir } from '../helpers/system.js';
import { fixturesDir } from '../helpers/paths.js';

const FIXTURES = fixturesDir;

test('IPv6 derivation matches the reference (spec §5.5 and the recorded format)', (t) => {
  const base = { address: parse6('fd00:9::1'), prefixlen: 64 };
  t.is(format6(partitionAddress6(base, 0)), 'fd00:9::2');
  t.is(format6(partitionAddress6(base, 9)), 'fd00:9::b');
  t.deepEqual(rangeDict(subRange6(base, 16, 1, 0)), {
    addr: 'fd00:9:0:0:4001::', netmask: 'ffff:ffff:ffff:ffff:ffff::', network: 'fd00:9:0:0:4001::/80', prefixlen: 80,
  });
  const tap = tapIpv6(base, 16, 3);
  t.like(tap, { ipv6_addr: 'fd00:9::8004:ffff:ffff:ffff', ipv6_gateway: 'fd00:9::8004:0:0:1', ipv6_network: 'fd00:9::8004:0:0:1/80', ipv6_netmask: 'ffff:ffff:ffff:ffff:ffff::' });
  const spec = { address: parse6('2001:db8:1:2::abcd'), prefixlen: 64 };
  t.is(format6(subRange6(spec, 16, 3, 0).network), '2001:db8:1:2:c001::');
  t.is(tapIpv6({ address: parse6('2001:db8:1:2:1357::'), prefixlen: 80 }, 16, 0).ipv6_addr, '2001:db8:1:2:1357:8001:ffff:ffff');
  t.throws(() => subRange6({ address: parse6('fd00::1'), prefixlen: 120 }, 16, 1, 0), { message: /too long for partition ranges/ });
});

test('computer address: stored network first, else shortest prefix then lowest address', (t) => {
  const c = [
    { address: parse6('fd00:2::5'), prefixlen: 64 },
    { address: parse6('fd00:1::9'), prefixlen: 48 },
    { address: parse6('fd00:1::3'), prefixlen: 48 },
  ];
  t.is(format6(chooseBase6(c)?.address ?? 0n), 'fd00:1::3');
  t.is(format6(chooseBase6(c, parse6('fd00:2::77'))?.address ?? 0n), 'fd00:2::5');
});

test('local IPv4 allocation is deterministic, keeps stored addresses, skips foreign ones, and refuses a small pool', (t) => {
  const pool = parseCidr4('10.0.0.0/16');
  const foreign = new Set([parse4('10.0.0.1')]);
  t.deepEqual(allocateIpv4(pool, 3, [], foreign).map(format4), ['10.0.0.2', '10.0.0.3', '10.0.0.4']);
  t.deepEqual(allocateIpv4(pool, 3, [parse4('10.0.213.130'), undefined, parse4('10.0.0.2')], foreign).map(format4), ['10.0.213.130', '10.0.0.3', '10.0.0.2']);
  // A stored address that became foreign, or out of the pool, is replaced.
  t.deepEqual(allocateIpv4(pool, 1, [parse4('10.0.0.1')], foreign).map(format4), ['10.0.0.2']);
  t.deepEqual(allocateIpv4(pool, 1, [parse4('192.168.1.1')], foreign).map(format4), ['10.0.0.2']);
  t.throws(() => allocateIpv4(parseCidr4('10.0.0.0/30'), 3, [], new Set()), { message: /10\.0\.0\.0\/30 is too small for 3 partitions/ });
});

interface Vector { name: string; typed_value: unknown; marshalled: string | null }

test('state file: the shared marshaller, pretty-printed as lxml; every vector of the types the computer dict uses reads back', (t) => {
  const vectors = (JSON.parse(readFileSync(`${FIXTURES}/xml-marshaller/vectors.json`, 'utf8')) as { vectors: Vector[] }).vectors;
  const plain = (v: unknown): boolean =>
    v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isInteger(v)) ||
    (Array.isArray(v) && v.every(plain)) ||
    (typeof v === 'object' && !Array.isArray(v) && !Object.keys(v as object).some((k) => k.startsWith('$')) && Object.values(v as object).every(plain));
  let checked = 0;
  for (const vector of vectors) {
    if (vector.marshalled === null || !plain(vector.typed_value)) continue;
    if (/<(float|long|reference|tuple|object)/.test(vector.marshalled)) continue;
    t.is(dumps(vector.typed_value as MarshalValue), vector.marshalled, vector.name);
    const pretty = prettyXml(vector.marshalled);
    t.deepEqual(loads(pretty), vector.typed_value as PyValue, vector.name);
    if (typeof vector.typed_value === 'object' && vector.typed_value !== null && !Array.isArray(vector.typed_value)) {
      t.deepEqual(loadsState(pretty), vector.typed_value as Dict, vector.name);
    }
    checked++;
  }
  t.true(checked >= 15, `checked ${checked} vectors`);
  t.is(prettyXml('<marshal><dictionary id="i2"><string>a</string><list id="i3"/><string>b</string><string></string></dictionary></marshal>'),
    '<marshal>\n  <dictionary id="i2">\n    <string>a</string>\n    <list id="i3"/>\n    <string>b</string>\n    <string></string>\n  </dictionary>\n</marshal>\n');
  // Values outside the computer dict's types are refused, not half-read.
  t.throws(() => loadsState('<marshal><dictionary id="i2"><string>a</string><float>1.5</float></dictionary></marshal>'), { message: /not a marshalled computer dictionary/ });
  t.throws(() => loadsState('<marshal><list id="i2"/></marshal>'), { message: /not a marshalled computer dictionary/ });
});

test('the recorded format POST: the SLAP client sends the recorded body byte for byte, form encoding included', async (t) => {
  const records = readFileSync(`${FIXTURES}/slap-traffic/01-format.jsonl`, 'utf8').trim().split('\n').map((l: string) => JSON.parse(l) as { path: string; request_body: string });
  const post = records.find((r) => r.path === '/loadComputerConfigurationFromXML');
  const xml = new URLSearchParams(post?.request_body ?? '').get('xml') ?? '';
  const computer = loadsState(xml);
  t.is(dumps(computer), xml);
  t.is((computer as { partition_list: unknown[] }).partition_list.length, 4);
  // What format really sends: the shared client, to a loopback listener.
  const seen: { url?: string; type?: string; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => { seen.push({ url: req.url, type: req.headers['content-type'], body }); res.end(''); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const client = new SlapClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  await client.loadComputerConfigurationFromXML(computer);
  await client.close();
  t.like(seen[0], { url: '/loadComputerConfigurationFromXML', type: 'application/x-www-form-urlencoded' });
  t.is(seen[0]?.body, post?.request_body ?? '');
  // The state file form reads back to the same value.
  t.deepEqual(loadsState(dumpsState(computer)), computer);
  t.true(dumpsState(computer).startsWith('<marshal>\n  <dictionary id="i2">\n    <string>address</string>\n'));
});

test('the stored computer comes from computer_json only when it marshals to exactly the state XML', (t) => {
  const records = readFileSync(`${FIXTURES}/slap-traffic/01-format.jsonl`, 'utf8').trim().split('\n').map((l: string) => JSON.parse(l) as { path: string; request_body: string });
  const xml = new URLSearchParams(records.find((r) => r.path === '/loadComputerConfigurationFromXML')?.request_body ?? '').get('xml') ?? '';
  const computer = loadsState(xml);
  const state = dumpsState(computer);
  const json = sortedJson(computer, 2);
  const fast = storedFromJson(state, json);
  t.deepEqual(fast?.value, computer);
  t.is(fast?.marshalled.pretty, state);
  t.is(fast?.marshalled.compact, xml);
  // A JSON file that says something else (or nothing usable) never stands in for the XML.
  t.is(storedFromJson(state, json.replace('"COMP-', '"COMQ-')), undefined);
  t.is(storedFromJson(state, '{'), undefined);
  t.is(storedFromJson(state, '[]'), undefined);
  t.is(storedFromJson(state, null), undefined);
  t.true(samePlain({ a: [1, { b: null }], c: 'x' }, { c: 'x', a: [1, { b: null }] }));
  t.false(samePlain({ a: [1] }, { a: [1], b: 1 }));
  t.false(samePlain({ a: 1 }, { a: '1' }));
});

test('a pair of state files recorded as written together stands for the XML without marshalling; the compact form is made on first use', (t) => {
  const records = readFileSync(`${FIXTURES}/slap-traffic/01-format.jsonl`, 'utf8').trim().split('\n').map((l: string) => JSON.parse(l) as { path: string; request_body: string });
  const xml = new URLSearchParams(records.find((r) => r.path === '/loadComputerConfigurationFromXML')?.request_body ?? '').get('xml') ?? '';
  const computer = loadsState(xml);
  const state = dumpsState(computer);
  const json = sortedJson(computer, 2);
  const fast = storedFromJson(state, json, true);
  t.deepEqual(fast?.value, computer);
  t.is(fast?.marshalled.pretty, state);
  t.is(fast?.marshalled.compact, xml);
  // Not JSON, or not a dictionary: still refused.
  t.is(storedFromJson(state, '{', true), undefined);
  t.is(storedFromJson(state, '[]', true), undefined);
  // The record vouches for the pair only when both digests are the recorded ones.
  const last: ReportRecord = { master_url: 'http://m/', computer_id: 'COMP-1', sent_sha256: sentDigest({ stateXmlSha256: sha256(state) }), state_xml_sha256: sha256(state), state_json_sha256: sha256(json), at: new Date(0).toISOString() };
  t.true(stateFilesRecorded(last, sha256(state), sha256(json)));
  t.false(stateFilesRecorded(last, sha256(state), sha256(json.replace('"COMP-', '"COMQ-'))));
  t.false(stateFilesRecorded(last, sha256(`${state} `), sha256(json)));
  t.false(stateFilesRecorded(last, sha256(state), null));
  t.false(stateFilesRecorded(undefined, sha256(state), sha256(json)));
});

test('the report is skipped only when the same master accepted exactly the same computer less than a day ago', (t) => {
  const now = Date.parse('2026-12-07T06:00:00Z');
  const next = { master_url: 'https://master/', computer_id: 'COMP-1', sent_sha256: sentDigest({ stateXmlSha256: sha256('<marshal/>') }), state_xml_sha256: sha256('<marshal/>'), state_json_sha256: null };
  const last: ReportRecord = { ...next, at: new Date(now - 3600_000).toISOString() };
  t.false(reportNeeded(last, next, now));
  t.true(reportNeeded(undefined, next, now), 'never reported (or no record): report');
  for (const [key, value] of Object.entries({ master_url: 'https://other/', computer_id: 'COMP-2', sent_sha256: sentDigest({ stateXmlSha256: sha256('<marshal></marshal>') }), state_xml_sha256: sha256('x'), state_json_sha256: sha256('{}') })) {
    t.true(reportNeeded(last, { ...next, [key]: value }, now), `${key} differs: report`);
  }
  t.true(reportNeeded({ ...last, at: new Date(now - REPORT_REFRESH_MS).toISOString() }, next, now), 'a day old: report again');
  t.true(reportNeeded({ ...last, at: new Date(now + 3600_000).toISOString() }, next, now), 'recorded in the future (clock set back): report');
  t.true(reportNeeded({ ...last, at: 'yesterday' }, next, now));
  // Pools change what is sent without changing the state file: the digests of the two forms never meet.
  t.not(sentDigest({ xml: '<marshal/>' }), sentDigest({ stateXmlSha256: sha256('<marshal/>') }));
  // A damaged record is no record.
  t.deepEqual(parseReportRecord(JSON.stringify(last)), last);
  t.is(parseReportRecord('{"master_url": 1}'), undefined);
  t.is(parseReportRecord('not json'), undefined);
  t.is(parseReportRecord('null'), undefined);
  t.is(parseReportRecord(JSON.stringify({ ...last, state_json_sha256: 3 })), undefined);
});

test('IPv4 text: dotted decimal without leading zeros, each part at most 255, as Python\'s ipaddress', (t) => {
  t.is(parse4('0.0.0.0'), 0);
  t.is(parse4('255.255.255.255'), 0xffffffff);
  t.is(parse4('10.9.0.1'), 0x0a090001);
  t.is(parse4('192.168.100.20'), 0xc0a86414);
  for (const bad of ['', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.256', '1.2.3.1000', '1..3.4', '.1.2.3', '1.2.3.', '1.2.3.a', ' 1.2.3.4', '1.2.3.4/32', '1.2.3.-1', '::1']) {
    t.throws(() => parse4(bad), { message: /not an IPv4 address/ }, JSON.stringify(bad));
  }
  t.is(format4(parse4('172.16.0.1')), '172.16.0.1');
});

test('IPv6 text: RFC 5952 out (as Python writes it), full, compressed, IPv4-suffixed and zoned forms in', (t) => {
  const cases: [string, string][] = [
    ['fd00:0009:0000:0000:8001:0000:0000:0001', 'fd00:9::8001:0:0:1'], ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::', '::'], ['::1', '::1'], ['1::', '1::'], ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'], ['FE80::1%eth0', 'fe80::1'],
    ['::ffff:10.0.0.1', '::ffff:a00:1'], ['2001:db8:1:2:1357::', '2001:db8:1:2:1357::'],
  ];
  for (const [input, out] of cases) t.is(format6(parse6(input)), out, input);
  for (const bad of ['1:2:3:4:5:6:7:8:9', ':::', '1::2::3', 'g::', '12345::', '1:2:3:4:5:6:7', '', '1.2.3.4', '::1.2.3.256', '1:2:3:4:5:6:7::8']) {
    t.throws(() => parse6(bad), { message: /not an IPv6 address/ }, bad);
  }
  t.is(parse4('10.9.0.1'), 0x0a090001);
  for (const bad of ['256.0.0.1', '1.2.3', '01.2.3.4', '1.2.3.4/24']) t.throws(() => parse4(bad), { message: /not an IPv4 address/ }, bad);
});

const PASSWD = 'root:x:0:0:root:/root:/bin/bash\nsync:x:4:65534:sync:/bin:/bin/sync\nold:x:998:998::/old:/bin/sh\n';
const GROUP = 'root:x:0:\nold:x:998:\ntaken:x:997:\n';
const SHADOW = 'root:*:19000:0:99999:7:::\nsync:*:19000:0:99999:7:::\nold:$6$hash:19000::::::\n';
const GSHADOW = 'root:*::\nold:!::\ntaken:!::\n';
const db = (): UserDb => ({ passwd: parseDbFile(PASSWD), group: parseDbFile(GROUP), shadow: parseDbFile(SHADOW), gshadow: parseDbFile(GSHADOW) });
const ranges = parseLoginDefs('SYS_UID_MIN 100\nSYS_UID_MAX 999\nUID_MIN 1000\nUID_MAX 60000\n');

test('users plan: new users get one free id for user and group, existing ones keep theirs, passwords locked, idempotent', (t) => {
  const wanted = [
    { name: 'soft', home: '/opt/slapgrid', shell: '/bin/sh', groups: [] },
    { name: 'old', home: '/srv/p0', shell: '/bin/sh', groups: ['soft'] },
    { name: 'u1', home: '/srv/p1', shell: '/bin/sh', groups: ['soft'] },
  ];
  const plan = planUsers(db(), wanted, [], ranges, 20000);
  // 999 is free as uid and gid; 998 is old's; 997 is a gid in use: skipped.
  t.like(plan.users.get('soft'), { uid: 999, gid: 999, created: true });
  t.like(plan.users.get('old'), { uid: 998, gid: 998, created: false });
  t.like(plan.users.get('u1'), { uid: 996, gid: 996, created: true });
  const after = { ...db(), ...plan.changes } as UserDb;
  t.regex(serializeDbFile(after.passwd), /^old:x:998:998::\/srv\/p0:\/bin\/sh$/m);
  t.regex(serializeDbFile(after.shadow), /^old:!\$6\$hash:/m);
  t.regex(serializeDbFile(after.group), /^soft:x:999:old,u1$/m);
  t.regex(serializeDbFile(after.gshadow), /^soft:!::old,u1$/m);
  t.true(serializeDbFile(after.passwd).startsWith('root:x:0:0:root:/root:/bin/bash\nsync:'));
  const again = planUsers(after, wanted, [], ranges, 20001);
  t.deepEqual(again.changes, {});
  t.deepEqual(again.summary, []);
  // Removal drops the user, its group and its memberships.
  const removed = planUsers(after, wanted.slice(0, 2), ['u1'], ranges, 20001);
  const final = { ...after, ...removed.changes } as UserDb;
  t.false(serializeDbFile(final.passwd).includes('u1'));
  t.regex(serializeDbFile(final.group), /^soft:x:999:old$/m);
  t.false(/^u1:/m.test(serializeDbFile(final.gshadow)));
});

test('users fast path on a copy of an etc directory: atomic files, "-" backups, and pwck/grpck agree', (t) => {
  const etc = tempDir(t);
  for (const f of ['passwd', 'group', 'shadow', 'gshadow']) copyFileSync(path.join('/etc', f), path.join(etc, f));
  const copied = readFileSync(path.join(etc, 'passwd'), 'utf8'); // /etc/passwd itself may change meanwhile (other tests' useradd)
  const home = tempDir(t);
  mkdirSync(path.join(home, 'p0'));
  const wanted = [
    { name: 'zzsoft', home, shell: '/bin/sh', groups: [] },
    { name: 'zzuser0', home: path.join(home, 'p0'), shell: '/bin/sh', groups: ['zzsoft'] },
  ];
  const location = { etcDir: etc, systemLock: false };
  const plan = withLockedUserDb(location, (d) => planUsers(d, wanted, [], readRanges(), 20000));
  t.deepEqual(Object.keys(plan.changes).sort(), ['group', 'gshadow', 'passwd', 'shadow']);
  t.is(readFileSync(path.join(etc, 'passwd-'), 'utf8'), copied);
  t.is(statSync(path.join(etc, 'shadow')).mode & 0o777, statSync('/etc/shadow').mode & 0o777);
  const pw = spawnSync('pwck', ['-r', path.join(etc, 'passwd'), path.join(etc, 'shadow')], { encoding: 'utf8' });
  // pwck resolves gids through the system's NSS, not our copy: "no group" is expected there, nothing else.
  const ours = (pw.stdout + pw.stderr).split('\n').filter((l) => l.includes('zz'));
  t.true(ours.every((l) => /no group \d+$/.test(l)), ours.join('\n'));
  t.regex(readFileSync(path.join(etc, 'group'), 'utf8'), /^zzuser0:x:\d+:$/m);
  const gr = spawnSync('grpck', ['-r', path.join(etc, 'group'), path.join(etc, 'gshadow')], { encoding: 'utf8' });
  const grOurs = (gr.stdout + gr.stderr).split('\n').filter((l) => l.includes('zz'));
  t.true(grOurs.every((l) => /no user zzuser0$|delete member 'zzuser0'\? No$/.test(l)), grOurs.join('\n'));
  const second = withLockedUserDb(location, (d) => planUsers(d, wanted, [], readRanges(), 20000));
  t.deepEqual(second.changes, {});
  t.true(readUserDb(location).passwd.lines.some((l) => l[0] === 'zzuser0'));
  // Stale "<file>.lock" of a dead process is taken over; a live one refuses.
  writeFileSync(path.join(etc, 'passwd.lock'), '999999999');
  t.notThrows(() => withLockedUserDb(location, (d) => planUsers(d, wanted, [], readRanges(), 20000)));
  writeFileSync(path.join(etc, 'passwd.lock'), String(process.pid));
  t.throws(() => withLockedUserDb(location, (d) => planUsers(d, wanted, [], readRanges(), 20000)), { message: /held by process/ });
});

function readRanges() {
  return parseLoginDefs(readFileSync('/etc/login.defs', 'utf8'));
}
