// Build once, run everywhere: node 1 (network namespace 1, beside the
// master) builds the example release with buildout and uploads it to the
// master's cache as root on loopback; node 2 (namespace 2, reached over a
// veth pair, another software user, a buildout that fails if it is ever run)
// installs it from the cache, then an instance of it is started in namespace
// 2 and answers. The real CLI and the real master process in both cases.
import test, { type ExecutionContext } from 'ava';
import { execFile, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { urlHash } from '../../src/software/plan.js';
import { createNetns, createUser, isRoot, repoRoot, run, runInNetns, tempDir, testName } from '../helpers/system.js';
import { makeSigner } from './helpers.js';

const rootTest = isRoot ? test.serial : test.skip;
const EXAMPLE = path.join(repoRoot, 'examples', 'hello-http', 'software.cfg');
const BIN = path.join(repoRoot, 'bin', 'slapos.js');
const PORT = 8080; // fresh namespaces: nothing else listens there

function inNetns(netns: string, args: string[], timeout = 300_000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', netns, ...args], { encoding: 'utf8', timeout, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }));
  });
}

/** ns1 ⟷ ns2 over a veth pair, 10.x.y.1/24 and 10.x.y.2/24. */
/** The pair goes away with the namespaces. */
function link(ns1: string, ns2: string): { a: string; b: string } {
  const name = testName('sltv');
  run('ip', ['link', 'add', name, 'netns', ns1, 'type', 'veth', 'peer', 'name', `${name}p`, 'netns', ns2]);
  const net = `10.${randomInt(100, 200)}.${randomInt(1, 250)}`;
  run('ip', ['-n', ns1, 'addr', 'add', `${net}.1/24`, 'dev', name]);
  run('ip', ['-n', ns2, 'addr', 'add', `${net}.2/24`, 'dev', `${name}p`]);
  run('ip', ['-n', ns1, 'link', 'set', name, 'up']);
  run('ip', ['-n', ns2, 'link', 'set', `${name}p`, 'up']);
  return { a: `${net}.1`, b: `${net}.2` };
}

const indent = (pem: string) => pem.trim().split('\n').map((line) => `  ${line}`).join('\n');

async function startMaster(t: ExecutionContext, netns: string, dir: string): Promise<void> {
  const cfg = path.join(dir, 'master.cfg');
  writeFileSync(cfg, `[slapos]\ncomputer_id = COMP-1\n[slapproxy]\nhost = 0.0.0.0\nport = ${PORT}\nallow_insecure_bind = true\ndatabase_uri = ${dir}/master/proxy.db\n`);
  mkdirSync(path.join(dir, 'master'));
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, BIN, 'proxy', 'start', '--cfg', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    const seen = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('master listening')) resolve();
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('exit', () => reject(new Error(`master exited: ${output}`)));
    setTimeout(() => reject(new Error(`master did not start: ${output}`)), 60_000);
  });
}

function nodeConfig(dir: string, name: string, computer: string, master: string, extra: string): string {
  const cfg = path.join(dir, `${name}.cfg`);
  writeFileSync(cfg,
    `[slapos]\ncomputer_id = ${computer}\nmaster_url = ${master}/\nsoftware_root = ${dir}/software\ninstance_root = ${dir}/instance-${name}\n` +
    `pidfile_software = ${dir}/${name}-sr.pid\n${extra}`);
  mkdirSync(path.join(dir, `instance-${name}`));
  return cfg;
}

rootTest('node 1 builds and uploads, node 2 (another namespace and software user) installs from the cache without buildout and runs an instance', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const ns1 = createNetns(t);
  const ns2 = createNetns(t);
  const { a } = link(ns1, ns2);
  const signer = makeSigner(t);
  await startMaster(t, ns1, dir);
  const supply = runInNetns(ns1,
    `import { SlapClient } from ${JSON.stringify(new URL(`file://${path.join(repoRoot, 'dist', 'src', 'slap', 'client.js')}`).href)};\n` +
    `const c = new SlapClient('http://127.0.0.1:${PORT}/');\n` +
    `for (const id of ['COMP-1', 'COMP-2']) await c.loadComputerConfigurationFromXML({ reference: id, address: '10.0.0.1', netmask: '255.255.0.0', partition_list: [] });\n` +
    `await c.supplySupply(${JSON.stringify(EXAMPLE)}, 'COMP-1'); await c.supplySupply(${JSON.stringify(EXAMPLE)}, 'COMP-2'); await c.close();`);
  t.is(supply.status, 0, supply.stderr);

  // Node 1: beside the master; downloads nothing (empty cache), builds, uploads as root on loopback.
  const user1 = createUser(t);
  mkdirSync(path.join(dir, 'software'));
  chownSync(path.join(dir, 'software'), user1.uid, user1.gid);
  const local = `http://127.0.0.1:${PORT}`;
  const cfg1 = nodeConfig(dir, 'node1', 'COMP-1', local,
    `[networkcache]\ndownload-binary-cache-url = ${local}/shacache\ndownload-binary-dir-url = ${local}/shadir\n` +
    `upload-binary-cache-url = ${local}/shacache\nupload-binary-dir-url = ${local}/shadir\n` +
    `signature-private-key-file = ${signer.keyFile}\nsignature-certificate-list =\n${indent(signer.certPem)}\n`);
  let started = performance.now();
  const first = await inNetns(ns1, [process.execPath, BIN, 'node', 'software', '--now', '--json', '-v', '--cfg', cfg1]);
  const buildSeconds = (performance.now() - started) / 1000;
  t.is(first.status, 0, first.stderr.slice(-4000));
  t.regex(first.stderr, /binary cache not used: building it reason=no entry in the cache/);
  t.regex(first.stderr, /uploaded to the binary cache/);
  const hash = urlHash(EXAMPLE);
  t.true(existsSync(path.join(dir, 'software', hash, '.installed.cfg')), 'node 1 ran buildout');

  // Node 2 gets the same software_root path (binaries hold absolute paths): node 1's tree moves away.
  renameSync(path.join(dir, 'software'), path.join(dir, 'software-node1'));
  const user2 = createUser(t);
  mkdirSync(path.join(dir, 'software'));
  chownSync(path.join(dir, 'software'), user2.uid, user2.gid);
  const noBuildout = path.join(dir, 'no-buildout');
  writeFileSync(noBuildout, `#!/bin/sh\ntouch ${dir}/buildout-was-run\nexit 1\n`, { mode: 0o755 });
  const remote = `http://${a}:${PORT}`;
  const cfg2 = nodeConfig(dir, 'node2', 'COMP-2', remote,
    `buildout = ${noBuildout}\n[networkcache]\ndownload-binary-cache-url = ${remote}/shacache\ndownload-binary-dir-url = ${remote}/shadir\n` +
    `signature-certificate-list =\n${indent(signer.certPem)}\n`);
  started = performance.now();
  const second = await inNetns(ns2, [process.execPath, BIN, 'node', 'software', '--now', '--json', '-v', '--cfg', cfg2]);
  // Figures for docs/performance.md (same run, same machine load): whole `slapos node software` passes.
  t.log(`software pass: build + upload ${buildSeconds.toFixed(1)} s, from the cache ${((performance.now() - started) / 1000).toFixed(1)} s`);
  t.is(second.status, 0, second.stderr.slice(-4000));
  t.regex(second.stderr, /installed from the binary cache: buildout not run seconds=[\d.]+/);
  t.false(existsSync(path.join(dir, 'buildout-was-run')), 'node 2 never ran buildout');
  const sp = path.join(dir, 'software', hash);
  t.true(existsSync(path.join(sp, '.completed')));
  t.is(statSync(path.join(sp, 'bin', 'hello-http-server')).uid, user2.uid, 'unpacked as node 2\'s software user');

  // An instance of the cached release, in namespace 2, as node 2's user.
  const partition = path.join(dir, 'slappart0');
  mkdirSync(partition, { mode: 0o750 });
  chownSync(partition, user2.uid, user2.gid);
  const port = 20_000 + randomInt(20_000);
  writeFileSync(path.join(partition, 'buildout.cfg'),
    readFileSync(path.join(sp, 'instance.cfg'), 'utf8') +
      `\n[slapos-node-configuration]\nipv4-random = 127.0.0.1\nipv6-random = ::1\ninstance-title = cached-instance\n\n[hello-http]\nport = ${port}\n`);
  const asUser2 = ['setpriv', `--reuid=${user2.uid}`, `--regid=${user2.gid}`, '--clear-groups'];
  const instance = await inNetns(ns2, [...asUser2, '/bin/sh', '-c', `cd ${partition} && HOME=${partition} exec /usr/bin/python3 ${path.join(repoRoot, 'lib', 'buildout-launcher.py')} -U`]);
  t.is(instance.status, 0, instance.stdout + instance.stderr);
  const server = spawn('ip', ['netns', 'exec', ns2, ...asUser2, path.join(partition, 'etc', 'service', 'hello-http')], { stdio: 'ignore' });
  t.teardown(() => {
    server.kill('SIGKILL');
  });
  let body = '';
  for (let i = 0; i < 60 && body === ''; i += 1) {
    const probe = runInNetns(ns2, `const r = await fetch('http://127.0.0.1:${port}/').then((r) => r.text(), () => ''); process.stdout.write(r);`);
    body = probe.stdout;
    if (body === '') await new Promise((resolve) => setTimeout(resolve, 500));
  }
  t.is(body, 'Hello from cached-instance\n');
});
