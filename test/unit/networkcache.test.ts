// Pure parts of the network cache: signatures, entry selection, metadata
// text, tarball member policy, buildout arguments, peer uid lookup.
import test from 'ava';
import { createHash } from 'node:crypto';
import { parseEntry } from '../../src/master/cache-routes.js';
import { procNetEndpoint, uidInTable } from '../../src/master/peer.js';
import { osTriple, parseOsRelease } from '../../src/networkcache/machine.js';
import { MemberPolicy, RefusedMember } from '../../src/networkcache/member-policy.js';
import { candidates, isCompatible, metadataString, type MachineInfo } from '../../src/networkcache/select.js';
import { buildoutCacheArgs } from '../../src/networkcache/settings.js';
import { keyMatchesList, parseCertificateList, signMetadata, verifyMetadata } from '../../src/networkcache/signature.js';
import { makeSigner, settingsFor } from '../networkcache/helpers.js';

const machine: MachineInfo = { multiarch: 'x86_64-linux-gnu', os: ['debian', '12', 'bookworm'] };
const sha = createHash('sha512').update('x').digest('hex');

test('signatures: RSA SHA-1 over the metadata text, verified against the certificate list only', (t) => {
  const good = makeSigner(t);
  const other = makeSigner(t, 'other');
  const trusted = parseCertificateList(`${good.certPem}\n`);
  t.is(trusted.length, 1);
  const metadata = metadataString({ sha512: sha, software_url: 'https://x/software.cfg', software_root: '/opt/slapgrid', multiarch: machine.multiarch, os: machine.os });
  const signature = signMetadata(metadata, good.keyPem);
  t.true(verifyMetadata(metadata, signature, trusted));
  // Old clients wrapped the base64 at 76 characters.
  t.true(verifyMetadata(metadata, `${signature.replace(/(.{76})/g, '$1\n')}\n`, trusted));
  t.false(verifyMetadata(`${metadata} `, signature, trusted), 'altered metadata');
  t.false(verifyMetadata(metadata, signMetadata(metadata, other.keyPem), trusted), 'untrusted signer');
  t.false(verifyMetadata(metadata, '', trusted), 'unsigned');
  t.false(verifyMetadata(metadata, signature, []), 'no certificate: nothing trusted');
  t.true(keyMatchesList(good.keyPem, trusted));
  t.false(keyMatchesList(other.keyPem, trusted));
  // A broken certificate in the list is left out, the others kept.
  const invalid: number[] = [];
  t.is(parseCertificateList(`-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n${other.certPem}${good.certPem}`, (i) => invalid.push(i)).length, 2);
  t.deepEqual(invalid, [0]);
});

test('metadata text is what Python json.dumps writes, in the reference order', (t) => {
  t.is(
    metadataString({ sha512: 'ab', software_url: 'https://é/x', software_root: '/opt/slapgrid', multiarch: 'x86_64-linux-gnu', os: ['debian', '12', 'bookworm'] }),
    '{"sha512": "ab", "software_url": "https://\\u00e9/x", "software_root": "/opt/slapgrid", "multiarch": "x86_64-linux-gnu", "os": ["debian", "12", "bookworm"]}',
  );
});

test('compatibility: multiarch equal; Debian by major version, codename ignored; raspbian is debian; old entries', (t) => {
  t.true(isCompatible({ multiarch: 'x86_64-linux-gnu', os: ['Debian', '12.5', 'other'] }, machine));
  t.true(isCompatible({ multiarch: 'x86_64-linux-gnu', os: ['raspbian', '12', ''] }, machine));
  t.false(isCompatible({ multiarch: 'aarch64-linux-gnu', os: ['debian', '12', 'bookworm'] }, machine));
  t.false(isCompatible({ multiarch: 'x86_64-linux-gnu', os: ['debian', '11', 'bullseye'] }, machine));
  t.true(isCompatible({ multiarch: 'x86_64-linux-gnu', os: ['ubuntu', '22.04', 'jammy'] }, { ...machine, os: ['ubuntu', '22.04', 'jammy'] }));
  t.false(isCompatible({ multiarch: 'x86_64-linux-gnu', os: ['ubuntu', '22.04', 'jammy'] }, { ...machine, os: ['ubuntu', '22.10', 'kinetic'] }));
  t.true(isCompatible({ machine: 'x86_64', os: "('debian', '12.1', 'bookworm')" }, machine));
  const entries = [
    { metadata: JSON.stringify({ sha512: sha, multiarch: 'x86_64-linux-gnu', os: ['debian', '12', ''] }), signature: 'bad' },
    { metadata: 'not json', signature: 'ok' },
    { metadata: JSON.stringify({ sha512: 'short', multiarch: 'x86_64-linux-gnu', os: ['debian', '12', ''] }), signature: 'ok' },
    { metadata: JSON.stringify({ sha512: sha, multiarch: 'x86_64-linux-gnu', os: ['debian', '11', ''] }), signature: 'ok' },
    { metadata: JSON.stringify({ sha512: sha, multiarch: 'x86_64-linux-gnu', os: ['debian', '12', ''] }), signature: 'ok' },
  ];
  t.deepEqual(candidates(entries, (e) => e.signature === 'ok', machine).map((c) => entries.indexOf(c.entry)), [4]);
  t.deepEqual(osTriple(parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')), ['debian', '12', 'bookworm']);
});

const hash = '0123456789abcdef0123456789abcdef';
const policy = (limits = { maxBytes: 1000, maxMembers: 10 }) => new MemberPolicy(hash, `/srv/slapgrid/${hash}`, limits);

test('member policy: only below <hash>/, no absolute, "..", device, FIFO, link escape, write through a link', (t) => {
  const p = policy();
  t.deepEqual(p.check({ name: `${hash}/`, type: 'directory' }), { kind: 'directory', rel: hash });
  t.deepEqual(p.check({ name: `./${hash}/bin/x`, type: 'file', size: 3 }), { kind: 'file', rel: `${hash}/bin/x`, size: 3 });
  t.is(p.check({ name: `${hash}/bin/rel`, type: 'symlink', linkname: '../parts/y' }).kind, 'symlink');
  t.is(p.check({ name: `${hash}/bin/abs`, type: 'symlink', linkname: `/srv/slapgrid/${hash}/parts/y` }).kind, 'symlink');
  t.is(p.check({ name: `${hash}/bin/hard`, type: 'link', linkname: `${hash}/bin/x` }).kind, 'hardlink');
  const refused = (header: Parameters<MemberPolicy['check']>[0], why: RegExp) =>
    t.throws(() => policy().check(header), { instanceOf: RefusedMember, message: why }, JSON.stringify(header));
  refused({ name: '/etc/passwd', type: 'file' }, /absolute/);
  refused({ name: `${hash}/../x`, type: 'file' }, /"\.\."/);
  refused({ name: 'ffffffffffffffffffffffffffffffff/x', type: 'file' }, /outside the release directory/);
  refused({ name: `${hash}/dev`, type: 'character-device' }, /device/);
  refused({ name: `${hash}/fifo`, type: 'fifo' }, /FIFO/);
  refused({ name: `${hash}/l`, type: 'symlink', linkname: '/etc' }, /outside the release/);
  refused({ name: `${hash}/l`, type: 'symlink', linkname: `/srv/slapgrid/${hash}/../other` }, /"\.\."/);
  refused({ name: `${hash}/a/l`, type: 'symlink', linkname: '../../x' }, /outside the release/);
  refused({ name: `${hash}/l`, type: 'symlink', linkname: 'a/../../x' }, /after a name/);
  refused({ name: `${hash}/h`, type: 'link', linkname: '/etc/shadow' }, /absolute/);
  refused({ name: `${hash}/h`, type: 'link', linkname: `${hash}/missing` }, /hard link/);
  const q = policy();
  q.check({ name: `${hash}/l`, type: 'symlink', linkname: 'bin' });
  t.throws(() => q.check({ name: `${hash}/l/x`, type: 'file', size: 1 }), { message: /below a link/ });
  const r = policy();
  r.check({ name: `${hash}/x`, type: 'file', size: 1 });
  t.throws(() => r.check({ name: `${hash}/x`, type: 'file', size: 1 }), { message: /twice/ });
});

test('member policy: a tar bomb stops at the byte or member limit', (t) => {
  const bytes = policy({ maxBytes: 100, maxMembers: 100 });
  bytes.check({ name: `${hash}/a`, type: 'file', size: 60 });
  t.throws(() => bytes.check({ name: `${hash}/b`, type: 'file', size: 60 }), { message: /more than 100 bytes/ });
  const members = policy({ maxBytes: 100, maxMembers: 3 });
  for (const n of ['a', 'b', 'c']) members.check({ name: `${hash}/${n}`, type: 'directory' });
  t.throws(() => members.check({ name: `${hash}/d`, type: 'directory' }), { message: /more than 3 members/ });
});

test('buildout gets the reference\'s networkcache assignments, and networkcache-section only with a key or upload URL', (t) => {
  t.deepEqual(buildoutCacheArgs(settingsFor('http://c', '')), []);
  t.deepEqual(buildoutCacheArgs(settingsFor('http://c', '', { signatureKeyFile: '/k.pem', uploadEggDirUrl: 'http://d', tls: { 'shacache-ca-file': '/ca' } })), [
    'buildout:networkcache-section=networkcache', 'networkcache:signature-private-key-file=/k.pem', 'networkcache:upload-dir-url=http://d', 'networkcache:shacache-ca-file=/ca',
  ]);
});

test('shadir entries: two strings, metadata naming a sha512', (t) => {
  t.is(parseEntry(JSON.stringify([JSON.stringify({ sha512: sha }), 'c2ln'])).sha512, sha);
  for (const bad of ['{', '[]', '["a"]', '[1, "x"]', JSON.stringify(['{}', '']), JSON.stringify([JSON.stringify({ sha512: 'x' }), '']), JSON.stringify([JSON.stringify({ sha512: sha }), 'not base64!'])]) {
    t.throws(() => parseEntry(bad), { message: /entry|metadata|signature/ }, bad);
  }
});

test('the uid of a loopback peer comes from the kernel socket table', (t) => {
  const table = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1001        0 2 1 0000000000000000 20 4 30 10 -1',
  ].join('\n');
  // The client's row: its local end is the connection's remote end (port 50000), its remote end our 8080.
  const row = (port: number) => uidInTable(table, procNetEndpoint('127.0.0.1', port).text, procNetEndpoint('127.0.0.1', 0x1f90).text);
  t.is(row(0xc350), 1001);
  t.is(row(0xc351), undefined);
});
