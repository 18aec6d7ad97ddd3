// An install from the binary cache killed at every step boundary (download →
// extraction → rename into place → report; kill-points.ts) converges on the
// next run to the state of an uninterrupted one: the release installed once
// (a tree renamed into place is completed, not downloaded again), the same
// tree (types, modes, contents, links, owned by the software user), no
// half-extracted tree ever under <hash>, no staging directory, no temporary
// download directory of the killed run. The cache is a stand-in HTTP server
// of the test (not the reference's shacache) serving one signed release; the
// node side is the real code (cache-step-driver.ts, in a child process), the
// worker runs as a real software user through the executor.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DOWNLOAD_KILL_POINTS, EXTRACT_KILL_POINTS } from '../../src/networkcache/kill-points.js';
import { machineInfo } from '../../src/networkcache/machine.js';
import { EXTRACTED_MARKER } from '../../src/networkcache/member-policy.js';
import { metadataString } from '../../src/networkcache/select.js';
import { signMetadata } from '../../src/networkcache/signature.js';
import { isRoot, type TestUser } from '../helpers/system.js';
import { cacheNode, type CacheNode, makeSigner, tarball, type Signer } from './helpers.js';

const rootTest = isRoot ? test.serial : test.skip;
const DRIVER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cache-step-driver.js');
const URL_ = 'http://example.invalid/kill/software.cfg';
const hash = createHash('md5').update(URL_).digest('hex');
/** In the order a run reaches them. */
const POINTS = ['cache.downloaded', 'cache.extract.staging', 'cache.extract.member', 'cache.extract.unpacked', 'cache.extract.renamed', 'cache.extracted'];
/** Killed after these, the release is whole in place: the next run completes it without downloading. */
const AFTER_RENAME = new Set(['cache.extract.renamed', 'cache.extracted']);

interface Cache {
  base: string;
  blobGets: () => number;
}

async function standInCache(t: ExecutionContext, signer: Signer, softwareRoot: string): Promise<Cache> {
  const blob = await tarball([
    { name: `${hash}/`, type: 'directory' },
    { name: `${hash}/bin/`, type: 'directory', mode: 0o750 },
    { name: `${hash}/bin/run`, content: '#!/bin/sh\necho hi\n', mode: 0o755 },
    { name: `${hash}/bin/again`, type: 'link', linkname: `${hash}/bin/run` },
    { name: `${hash}/lib/`, type: 'directory' },
    ...Array.from({ length: 20 }, (_, i) => ({ name: `${hash}/lib/part${i}.py`, content: `value = ${i}\n`.repeat(100) })),
    { name: `${hash}/share/`, type: 'directory', mode: 0o555 },
    { name: `${hash}/share/readme`, content: 'read-only directory\n', mode: 0o444 },
    { name: `${hash}/run`, type: 'symlink', linkname: 'bin/run' },
    { name: `${hash}/.installed.cfg`, content: '[buildout]\nparts =\n' },
  ]);
  const sha512 = createHash('sha512').update(blob).digest('hex');
  const machine = machineInfo();
  const metadata = metadataString({ sha512, software_url: URL_, software_root: softwareRoot, multiarch: machine.multiarch, os: machine.os });
  const entries = JSON.stringify([[metadata, signMetadata(metadata, signer.keyPem)]]);
  let gets = 0;
  const server = createServer((request, response) => {
    if (request.url === `/shadir/${hash}`) {
      response.writeHead(200, { 'content-type': 'application/json' }).end(entries);
    } else if (request.url === `/shacache/${sha512}`) {
      gets += 1;
      response.writeHead(200, { 'content-length': blob.length }).end(blob);
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  return { base: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, blobGets: () => gets };
}

interface Run {
  pid: number;
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function drive(job: object, killAt?: string): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env['SLAPOS_TEST_KILL_AT'];
  if (killAt !== undefined) env['SLAPOS_TEST_KILL_AT'] = killAt;
  const child = spawn(process.execPath, [DRIVER, JSON.stringify(job)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (status, signal) => resolve({ pid: child.pid ?? 0, status, signal, stdout, stderr })));
}

/** The release tree: each entry's type, mode, content or target, and whether the software user owns it. */
function snapshot(root: string, user: TestUser): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    const full = path.join(root, rel);
    const st = lstatSync(full);
    const owned = st.uid === user.uid ? 'user' : `uid ${st.uid}`;
    if (st.isSymbolicLink()) out.push(`${rel} link ${readlinkSync(full)} ${owned}`);
    else if (st.isFile()) {
      const content = rel === '.completed' ? '(date)' : createHash('sha1').update(readFileSync(full)).digest('hex');
      out.push(`${rel} file ${(st.mode & 0o7777).toString(8)} ${content} nlink ${st.nlink} ${owned}`);
    } else if (st.isDirectory()) {
      out.push(`${rel || '.'} dir ${(st.mode & 0o7777).toString(8)} ${owned}`);
      for (const name of readdirSync(full).sort()) walk(path.join(rel, name));
    } else out.push(`${rel} other`);
  };
  walk('');
  return out;
}

const tempOf = (pid: number) => readdirSync(os.tmpdir()).filter((name) => name.startsWith(`slapos-cache-${pid}-`));

rootTest('the kill points are the ones the code declares, in run order', (t) => {
  t.deepEqual([...POINTS].sort(), [...DOWNLOAD_KILL_POINTS, ...EXTRACT_KILL_POINTS].sort());
});

rootTest('an install from the binary cache killed at every step boundary converges to the uninterrupted state', async (t) => {
  const signer = makeSigner(t);
  const jobOf = (n: CacheNode, cache: Cache) => ({ base: cache.base, certPem: signer.certPem, url: URL_, softwareRoot: n.softwareRoot, hash, user: n.user });

  const clean = cacheNode(t);
  const cleanCache = await standInCache(t, signer, clean.softwareRoot);
  const uninterrupted = await drive(jobOf(clean, cleanCache));
  t.is(uninterrupted.status, 0, uninterrupted.stderr);
  t.deepEqual(JSON.parse(uninterrupted.stdout), { fromCache: true });
  t.deepEqual(readdirSync(clean.softwareRoot), [hash]);
  const expected = snapshot(path.join(clean.softwareRoot, hash), clean.user);
  t.true(expected.some((line) => line.startsWith(`${EXTRACTED_MARKER} file`)), expected.join('\n'));
  t.true(expected.some((line) => line.startsWith('.completed file')));

  for (const point of POINTS) {
    const n = cacheNode(t);
    const cache = await standInCache(t, signer, n.softwareRoot);
    const killed = await drive(jobOf(n, cache), point);
    t.is(killed.signal, 'SIGKILL', `${point}: ${killed.stderr.slice(-2000)}`);
    const sp = path.join(n.softwareRoot, hash);
    if (AFTER_RENAME.has(point)) {
      t.true(existsSync(path.join(sp, EXTRACTED_MARKER)), `${point}: the whole tree is in place`);
      t.false(existsSync(path.join(sp, '.completed')), `${point}: not completed yet`);
    } else {
      t.false(existsSync(sp), `${point}: never a half release under ${hash}`);
    }

    const next = await drive(jobOf(n, cache));
    t.is(next.status, 0, `${point}: ${next.stderr.slice(-2000)}`);
    t.deepEqual(JSON.parse(next.stdout), { fromCache: true }, point);
    t.deepEqual(readdirSync(n.softwareRoot), [hash], `${point}: no staging directory left`);
    t.deepEqual(snapshot(sp, n.user), expected, `${point}: the same tree as an uninterrupted run`);
    t.is(cache.blobGets(), AFTER_RENAME.has(point) ? 1 : 2, `${point}: ${AFTER_RENAME.has(point) ? 'completed, not downloaded again' : 'downloaded again, extracted once'}`);
    t.deepEqual(tempOf(killed.pid), [], `${point}: the killed run's temporary download directory is removed`);
    t.deepEqual(tempOf(next.pid), [], point);
  }
});
