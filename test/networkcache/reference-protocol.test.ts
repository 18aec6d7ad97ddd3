// Our master's cache and our node against the wire format of
// slapos.libnetworkcache, both directions. The reference's side is a STAND-IN
// written for this test (test/networkcache/reference-client.py, not the
// library): Python's standard library doing what the library does, byte for
// byte — http.client requests with its headers (POST <cache> with
// Content-Length and application/octet-stream, expecting 201 and the sha512
// as body; PUT <dir>/<key> with json.dumps([metadata, signature]);
// GET <dir>/<key>, GET <cache>/<sha512>), metadata by json.dumps(kw) with
// sha512 first, RSA PKCS#1 v1.5 SHA-1 signatures in one-line base64 (openssl
// dgst, what the library's crypto.sign does), and archives written and read by
// Python's tarfile as the library's archive()/extract() (w:gz, one top-level
// <md5> directory, PAX format, members without trailing slashes).
//  1. The reference uploads a release to our master (root on loopback); our
//     node downloads, verifies and unpacks it as its software user.
//  2. Our node uploads a build to our master; the reference lists, verifies
//     the signature, downloads (sha512 checked) and extracts it.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { downloadRelease } from '../../src/networkcache/download.js';
import { machineInfo } from '../../src/networkcache/machine.js';
import { uploadRelease } from '../../src/networkcache/upload.js';
import { listenOnLoopback } from '../helpers/master.js';
import { createUser, isRoot, repoRoot, tempDir } from '../helpers/system.js';
import { makeSigner, settingsFor } from './helpers.js';

const rootTest = isRoot ? test.serial : test.skip;
const CLIENT = path.join(repoRoot, 'test', 'networkcache', 'reference-client.py');

function python(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('/usr/bin/python3', [CLIENT, ...args], { encoding: 'utf8', timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }));
  });
}

async function master(t: import('ava').ExecutionContext, dir: string): Promise<string> {
  const app = await buildMaster({
    store: new SqliteStore(path.join(dir, 'proxy.db')), defaultComputer: 'COMP-1',
    cache: { directory: path.join(dir, 'cache'), quota: 1e9, maxBlob: 1e8, download: 'open' },
  });
  t.teardown(() => app.close());
  return `http://127.0.0.1:${await listenOnLoopback(app)}`;
}

rootTest('the reference uploads, our node installs; our node uploads, the reference installs', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const base = await master(t, dir);
  const signer = makeSigner(t);
  const certFile = path.join(dir, 'signer.crt');
  writeFileSync(certFile, signer.certPem);
  const machine = machineInfo();
  const log = pino({ level: 'silent' });

  // 1. A release tree as a reference node built it, archived and uploaded by the stand-in.
  const url1 = 'http://example.invalid/reference-built/software.cfg';
  const hash1 = createHash('md5').update(url1).digest('hex');
  const built = path.join(dir, 'reference-node', hash1);
  mkdirSync(path.join(built, 'bin'), { recursive: true });
  mkdirSync(path.join(built, 'parts', 'empty'), { recursive: true });
  writeFileSync(path.join(built, 'bin', 'run'), '#!/bin/sh\necho reference\n', { mode: 0o755 });
  writeFileSync(path.join(built, '.installed.cfg'), '[buildout]\nparts =\n');
  const up = await python(['upload', base, built, url1, '/opt/slapgrid', signer.keyFile, machine.multiarch, JSON.stringify(machine.os)]);
  t.is(up.status, 0, up.stderr);
  const uploaded = JSON.parse(up.stdout) as { sha512: string; existed: boolean; metadata: string };
  t.false(uploaded.existed, 'GET <cache>/<sha512> said 404 before the POST');
  t.true(uploaded.metadata.startsWith(`{"sha512": "${uploaded.sha512}", "software_url": `));

  const user = createUser(t);
  const softwareRoot = path.join(dir, 'software');
  mkdirSync(softwareRoot);
  chownSync(softwareRoot, user.uid, user.gid);
  const outcome = await downloadRelease({ settings: settingsFor(base, signer.certPem), url: url1, hash: hash1, softwareRoot, user, log });
  t.true(outcome.ok, JSON.stringify(outcome));
  t.is(readFileSync(path.join(softwareRoot, hash1, 'bin', 'run'), 'utf8'), '#!/bin/sh\necho reference\n');
  t.deepEqual(readdirSync(path.join(softwareRoot, hash1, 'parts')), ['empty']);

  // 2. A build of our node (a tree owned by its software user), uploaded by our node, installed by the reference.
  const url2 = 'http://example.invalid/our-built/software.cfg';
  const hash2 = createHash('md5').update(url2).digest('hex');
  const ours = path.join(softwareRoot, hash2);
  mkdirSync(path.join(ours, 'bin'), { recursive: true });
  writeFileSync(path.join(ours, 'bin', 'run'), '#!/bin/sh\necho ours\n', { mode: 0o755 });
  writeFileSync(path.join(ours, '.completed'), 'not uploaded');
  for (const p of [ours, path.join(ours, 'bin'), path.join(ours, 'bin', 'run'), path.join(ours, '.completed')]) chownSync(p, user.uid, user.gid);
  const settings = { ...settingsFor(base, signer.certPem), signatureKeyFile: signer.keyFile };
  const upload = await uploadRelease({ settings, url: url2, hash: hash2, softwareRoot, user, log, machine, retryDelayMs: 0 });
  t.true(upload.uploaded, JSON.stringify(upload));
  const target = path.join(dir, 'reference-install');
  mkdirSync(target);
  const down = await python(['install', base, hash2, certFile, machine.multiarch, target]);
  t.is(down.status, 0, down.stderr);
  const installed = JSON.parse(down.stdout) as { metadata: Record<string, unknown>; members: string[] };
  t.is(installed.metadata['software_url'], url2);
  t.is(installed.metadata['software_root'], softwareRoot);
  t.deepEqual(Object.keys(installed.metadata), ['sha512', 'software_url', 'software_root', 'multiarch', 'os']);
  t.true(installed.members.includes(`${hash2}/bin/run`), installed.members.join(' '));
  t.false(installed.members.includes(`${hash2}/.completed`));
  t.is(readFileSync(path.join(target, hash2, 'bin', 'run'), 'utf8'), '#!/bin/sh\necho ours\n');
});
