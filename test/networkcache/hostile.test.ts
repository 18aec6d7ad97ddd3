// A hostile cache can only make the node build from source. The cache here
// is a stand-in HTTP server of the test (a hostile shacache/shadir, not the
// reference's) serving what each case needs; the node's real download and
// extraction (as a real software user, through the executor) must refuse it
// and leave nothing behind: no release directory, no staging directory,
// nothing outside software_root.
import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { pino } from 'pino';
import { downloadRelease, type DownloadOutcome } from '../../src/networkcache/download.js';
import type { MachineInfo, RawEntry } from '../../src/networkcache/select.js';
import { metadataString } from '../../src/networkcache/select.js';
import type { ExtractLimits } from '../../src/networkcache/settings.js';
import { signMetadata } from '../../src/networkcache/signature.js';
import { isRoot } from '../helpers/system.js';
import { cacheNode, type CacheNode, makeSigner, settingsFor, tarball, type Member, type Signer } from './helpers.js';

const rootTest = isRoot ? test.serial : test.skip;
const machine: MachineInfo = { multiarch: 'x86_64-linux-gnu', os: ['debian', '12', 'bookworm'] };
const URL_ = 'http://example.invalid/hostile/software.cfg';
const hash = createHash('md5').update(URL_).digest('hex');
const sha512 = (data: Buffer) => createHash('sha512').update(data).digest('hex');

interface Served {
  entries: RawEntry[];
  blobs: Map<string, Buffer>;
  /** Send this many bytes of each blob, announcing the whole length, then cut the connection. */
  truncateAt?: number;
}

async function standInCache(t: ExecutionContext, served: Served): Promise<string> {
  const server = createServer((request, response) => {
    const [, kind, name] = (request.url ?? '').split('/');
    if (kind === 'shadir' && name === hash) {
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(served.entries.map((e) => [e.metadata, e.signature])));
      return;
    }
    const blob = kind === 'shacache' ? served.blobs.get(name ?? '') : undefined;
    if (!blob) {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'content-length': blob.length });
    if (served.truncateAt === undefined) response.end(blob);
    else response.write(blob.subarray(0, served.truncateAt), () => response.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  return `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
}

function entryFor(blob: Buffer, signer: Signer | undefined, softwareRoot: string, sha = sha512(blob)): RawEntry {
  const metadata = metadataString({ sha512: sha, software_url: URL_, software_root: softwareRoot, multiarch: machine.multiarch, os: machine.os });
  return { metadata, signature: signer ? signMetadata(metadata, signer.keyPem) : '' };
}

async function attempt(t: ExecutionContext, n: CacheNode, served: Served, trusted: Signer, limits?: ExtractLimits): Promise<DownloadOutcome> {
  const base = await standInCache(t, served);
  return downloadRelease({
    settings: settingsFor(base, trusted.certPem, limits ? { limits } : {}),
    url: URL_, hash, softwareRoot: n.softwareRoot, user: n.user, log: pino({ level: 'silent' }), machine,
  });
}

/** Nothing was installed, no staging directory is left, nothing appeared beside software_root. */
function assertNothingLeft(t: ExecutionContext, n: CacheNode) {
  t.deepEqual(readdirSync(n.softwareRoot), []);
  t.deepEqual(readdirSync(n.dir).sort(), ['software']);
}

rootTest('a signed, compatible, well-formed release is unpacked as the software user, links inside kept', async (t) => {
  const signer = makeSigner(t);
  const n = cacheNode(t);
  const blob = await tarball([
    { name: `${hash}/`, type: 'directory' },
    { name: `${hash}/bin/`, type: 'directory', mode: 0o750 },
    { name: `${hash}/bin/run`, content: '#!/bin/sh\necho hi\n', mode: 0o755 },
    { name: `${hash}/bin/again`, type: 'link', linkname: `${hash}/bin/run` },
    { name: `${hash}/run`, type: 'symlink', linkname: 'bin/run' },
    { name: `${hash}/abs`, type: 'symlink', linkname: `${n.softwareRoot}/${hash}/bin/run` },
  ]);
  // Entries the node must pass over: unsigned, then another architecture.
  const other = { ...entryFor(blob, signer, n.softwareRoot) };
  other.metadata = other.metadata.replace('x86_64-linux-gnu', 'aarch64-linux-gnu');
  other.signature = signMetadata(other.metadata, signer.keyPem);
  const outcome = await attempt(t, n, { entries: [entryFor(blob, undefined, n.softwareRoot), other, entryFor(blob, signer, n.softwareRoot)], blobs: new Map([[sha512(blob), blob]]) }, signer);
  t.true(outcome.ok, JSON.stringify(outcome));
  const sp = path.join(n.softwareRoot, hash);
  t.deepEqual(readdirSync(n.softwareRoot), [hash]);
  t.is(statSync(path.join(sp, 'bin', 'run')).uid, n.user.uid);
  t.is(statSync(path.join(sp, 'bin', 'run')).mode & 0o777, 0o755);
  t.is(statSync(path.join(sp, 'bin')).mode & 0o777, 0o750);
  t.is(statSync(path.join(sp, 'bin', 'again')).ino, statSync(path.join(sp, 'bin', 'run')).ino);
  t.true(lstatSync(path.join(sp, 'run')).isSymbolicLink());
  t.true(lstatSync(path.join(sp, 'abs')).isSymbolicLink());
});

rootTest('hostile cache: unsigned entries are never used', async (t) => {
  const signer = makeSigner(t);
  const n = cacheNode(t);
  const blob = await tarball([{ name: `${hash}/x`, content: 'x' }]);
  const outcome = await attempt(t, n, { entries: [entryFor(blob, undefined, n.softwareRoot)], blobs: new Map([[sha512(blob), blob]]) }, signer);
  t.false(outcome.ok);
  t.regex(outcome.ok ? '' : outcome.reason, /signed by a trusted certificate/);
  assertNothingLeft(t, n);
});

rootTest('hostile cache: entries signed by an untrusted key, or altered after signing, are never used', async (t) => {
  const signer = makeSigner(t);
  const mallory = makeSigner(t, 'mallory');
  const n = cacheNode(t);
  const blob = await tarball([{ name: `${hash}/x`, content: 'x' }]);
  const altered = entryFor(blob, signer, n.softwareRoot);
  altered.metadata = altered.metadata.replace(n.softwareRoot, '/elsewhere');
  const outcome = await attempt(t, n, { entries: [entryFor(blob, mallory, n.softwareRoot), altered], blobs: new Map([[sha512(blob), blob]]) }, signer);
  t.false(outcome.ok);
  t.regex(outcome.ok ? '' : outcome.reason, /none of the 2 entries is signed by a trusted certificate/);
  assertNothingLeft(t, n);
});

rootTest('hostile cache: a blob whose sha512 differs from the signed one is refused', async (t) => {
  const signer = makeSigner(t);
  const n = cacheNode(t);
  const good = await tarball([{ name: `${hash}/x`, content: 'good' }]);
  const evil = await tarball([{ name: `${hash}/x`, content: 'evil' }]);
  const outcome = await attempt(t, n, { entries: [entryFor(good, signer, n.softwareRoot)], blobs: new Map([[sha512(good), evil]]) }, signer);
  t.false(outcome.ok);
  t.regex(outcome.ok ? '' : outcome.reason, /sha512 mismatch/);
  assertNothingLeft(t, n);
});

rootTest('hostile cache: a truncated stream is refused', async (t) => {
  const signer = makeSigner(t);
  const n = cacheNode(t);
  const blob = await tarball([{ name: `${hash}/x`, content: 'x'.repeat(100_000) + Math.random() }]);
  const outcome = await attempt(t, n, { entries: [entryFor(blob, signer, n.softwareRoot)], blobs: new Map([[sha512(blob), blob]]), truncateAt: 100 }, signer);
  t.false(outcome.ok);
  t.regex(outcome.ok ? '' : outcome.reason, /download failed/);
  assertNothingLeft(t, n);
});

rootTest('hostile cache: a tar bomb stops at the byte and member limits', async (t) => {
  const signer = makeSigner(t);
  const n = cacheNode(t);
  // 50 MB of zeros compress to ~50 KB.
  const bytes = await tarball([{ name: `${hash}/zeros`, content: '\0'.repeat(50 * 1024 * 1024) }]);
  let outcome = await attempt(t, n, { entries: [entryFor(bytes, signer, n.softwareRoot)], blobs: new Map([[sha512(bytes), bytes]]) }, signer, { maxBytes: 1024 * 1024, maxMembers: 1000 });
  t.regex(outcome.ok ? '' : outcome.reason, /more than 1048576 bytes/);
  assertNothingLeft(t, n);
  const many = await tarball(Array.from({ length: 50 }, (_, i): Member => ({ name: `${hash}/f${i}`, content: '' })));
  outcome = await attempt(t, n, { entries: [entryFor(many, signer, n.softwareRoot)], blobs: new Map([[sha512(many), many]]) }, signer, { maxBytes: 1024 * 1024, maxMembers: 20 });
  t.regex(outcome.ok ? '' : outcome.reason, /more than 20 members/);
  assertNothingLeft(t, n);
});

rootTest('hostile cache: "..", absolute, outside links, writes through a link, devices and FIFOs are refused; nothing escapes', async (t) => {
  const signer = makeSigner(t);
  const n = cacheNode(t);
  const cases: [Member[], RegExp][] = [
    [[{ name: `${hash}/../escape`, content: 'x' }], /"\.\."/],
    [[{ name: `${n.dir}/escape`, content: 'x' }], /absolute/],
    [[{ name: 'escape', content: 'x' }], /outside the release directory/],
    [[{ name: `${hash}/l`, type: 'symlink', linkname: n.dir }, { name: `${hash}/l/escape`, content: 'x' }], /outside the release/],
    [[{ name: `${hash}/l`, type: 'symlink', linkname: '..' }, { name: `${hash}/l/escape`, content: 'x' }], /outside the release/],
    [[{ name: `${hash}/d/`, type: 'directory' }, { name: `${hash}/d/l`, type: 'symlink', linkname: '.' }, { name: `${hash}/d/l/x`, content: 'x' }], /below a link/],
    [[{ name: `${hash}/h`, type: 'link', linkname: '/etc/passwd' }], /absolute/],
    [[{ name: `${hash}/fifo`, type: 'fifo' }], /FIFO/],
    [[{ name: `${hash}/null`, type: 'character-device' }], /device/],
  ];
  for (const [members, why] of cases) {
    const blob = await tarball([{ name: `${hash}/`, type: 'directory' }, { name: `${hash}/ok`, content: 'ok' }, ...members]);
    const outcome = await attempt(t, n, { entries: [entryFor(blob, signer, n.softwareRoot)], blobs: new Map([[sha512(blob), blob]]) }, signer);
    t.false(outcome.ok, members[members.length - 1]?.name);
    t.regex(outcome.ok ? '' : outcome.reason, why, members[members.length - 1]?.name);
    assertNothingLeft(t, n);
  }
  t.false(existsSync(path.join(n.dir, 'escape')));
});
