// `slapos cachelookup` against our master's cache: every entry listed, with
// its signature and compatibility verdicts; a missing release is an error.
import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { machineInfo } from '../../src/networkcache/machine.js';
import { metadataString } from '../../src/networkcache/select.js';
import { signMetadata } from '../../src/networkcache/signature.js';
import { listenOnLoopback } from '../helpers/master.js';
import { isRoot, repoRoot, tempDir } from '../helpers/system.js';
import { makeSigner } from './helpers.js';

const slapos = (args: string[]) => new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
  execFile(process.execPath, [path.join(repoRoot, 'bin', 'slapos.js'), ...args], { encoding: 'utf8', timeout: 60_000 },
    (error, stdout, stderr) => resolve({ status: error ? Number(error.code ?? 1) : 0, stdout, stderr }));
});

(isRoot ? test : test.skip)('cachelookup binary-sr lists entries with verified/compatible; pypi and url use the regular cache keys', async (t) => {
  const dir = tempDir(t);
  const app = await buildMaster({ store: new SqliteStore(path.join(dir, 'db')), defaultComputer: 'C', cache: { directory: path.join(dir, 'cache'), quota: 1e9, maxBlob: 1e6, download: 'open' } });
  t.teardown(() => app.close());
  const base = `http://127.0.0.1:${await listenOnLoopback(app)}`;
  const signer = makeSigner(t);
  const url = 'https://example.invalid/software.cfg';
  const key = createHash('md5').update(url).digest('hex');
  const machine = machineInfo();
  const sha = createHash('sha512').update('blob').digest('hex');
  const good = metadataString({ sha512: sha, software_url: url, software_root: '/opt/slapgrid', multiarch: machine.multiarch, os: machine.os });
  const foreign = metadataString({ sha512: sha, software_url: url, software_root: '/opt/slapgrid', multiarch: 'mips-linux-gnu', os: machine.os });
  for (const entry of [[good, signMetadata(good, signer.keyPem)], [foreign, '']]) {
    t.is((await fetch(`${base}/shadir/${key}`, { method: 'PUT', body: JSON.stringify(entry) })).status, 201);
  }
  const pypi = JSON.stringify({ sha512: sha, url: 'https://pypi/x.tar.gz' });
  t.is((await fetch(`${base}/shadir/pypi:slapos.core=1.24.0`, { method: 'PUT', body: JSON.stringify([pypi, signMetadata(pypi, signer.keyPem)]) })).status, 201);
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, `[networkcache]\ndownload-binary-dir-url = ${base}/shadir\ndownload-dir-url = ${base}/shadir\n` +
    `signature-certificate-list =\n${signer.certPem.trim().split('\n').map((l) => `  ${l}`).join('\n')}\n`);

  const json = await slapos(['cachelookup', 'binary-sr', url, '--json', '--cfg', cfg]);
  t.is(json.status, 0, json.stderr);
  const result = JSON.parse(json.stdout) as { key: string; rows: { verified: boolean; compatible: boolean; multiarch: string }[] };
  t.is(result.key, key);
  t.deepEqual(result.rows.map((r) => [r.multiarch, r.verified, r.compatible]), [[machine.multiarch, true, true], ['mips-linux-gnu', false, false]]);
  const table = await slapos(['cachelookup', 'binary-sr', key, '--cfg', cfg]);
  t.regex(table.stdout, /multiarch\s+distribution\s+version\s+id\s+compatible\?\s+verified\?/);
  t.regex(table.stdout, new RegExp(`${machine.multiarch}\\s+${machine.os[0]}\\s+${machine.os[1]}\\s+${sha}\\s+yes\\s+yes`));
  const egg = await slapos(['cachelookup', 'pypi', 'slapos.core', '1.24.0', '--cfg', cfg]);
  t.regex(egg.stdout, /https:\/\/pypi\/x\.tar\.gz\s+[0-9a-f]{128}\s+yes/);
  const missing = await slapos(['cachelookup', 'binary-sr', 'https://example.invalid/other.cfg', '--cfg', cfg]);
  t.is(missing.status, 1);
  t.regex(missing.stderr, /Software release not found in binary cache/);
  const url404 = await slapos(['cachelookup', 'url', 'https://nowhere/x', '--cfg', cfg]);
  t.regex(url404.stderr, /URL not found in cache/);
});
