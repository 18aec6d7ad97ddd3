// TLS as install.sh --proxy sets it up (`proxy init-ca --configure`): the node
// writes each partition's certificate and key where its instance finds them
// (certificate_repository_path, the instance step of slapgrid.md §4.3), and a
// process of partition A's user, with A's files, reads and writes A only —
// not B's parameters, connection parameters or bang, nor B's key — while the
// node's computer certificate (root) may. In the style of peer-identity.test.ts
// (the callers are real processes of real users).
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseConfig } from '../../src/config/load.js';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { SlapClient } from '../../src/slap/client.js';
import { certificateStep } from '../../src/instance/steps/certificate.js';
import type { PartitionRun } from '../../src/instance/step.js';
import { createUser, isRoot, tempDir, type TestUser } from '../helpers/system.js';
import { listenOnLoopback } from '../helpers/master.js';
import { BIN } from '../helpers/proxy-process.js';
import { computer } from '../helpers/semantics-suite.js';

const rootTest = isRoot ? test.serial : test.skip;
const execFileAsync = promisify(execFile);
const SR = '/opt/sr/trivial/software.cfg';

/**
 * One SLAP call from a separate process running as `user` (root when
 * undefined), authenticated by the key and certificate FILES it is given (read
 * by that process: its own permissions apply). Prints the HTTP status, or the
 * error code when a file cannot be read.
 */
const CALLER = `
const fs = require('node:fs'), https = require('node:https');
const [url, method, body, keyFile, certFile, caFile] = process.argv.slice(1);
let key, cert;
try { key = fs.readFileSync(keyFile); cert = fs.readFileSync(certFile); } catch (e) { console.log(e.code); process.exit(0); }
const u = new URL(url);
const req = https.request(u, { method, key, cert, ca: fs.readFileSync(caFile),
  headers: method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {} }, (res) => { res.resume(); console.log(res.statusCode); });
req.on('error', (e) => console.log('error ' + e.message));
req.end(method === 'POST' ? body : undefined);
`;

async function callAs(user: TestUser | undefined, files: { key: string; cert: string; ca: string }, method: 'GET' | 'POST', url: string, body = ''): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, ['-e', CALLER, url, method, body, files.key, files.cert, files.ca],
    { encoding: 'utf8', ...(user ? { uid: user.uid, gid: user.gid } : {}), timeout: 20_000 });
  return stdout.trim();
}

rootTest('TLS by init-ca --configure: a partition\'s certificate, written by the node, acts for its partition only; the computer\'s for all', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o755); // the partition users reach the repository through it
  const ssl = path.join(dir, 'ssl');
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\ncomputer_id = COMP-1\nmaster_url = http://127.0.0.1:1\n\n[slapproxy]\nhost = 127.0.0.1\nport = 1\n`, { mode: 0o640 });
  const init = await execFileAsync(process.execPath, [BIN, 'proxy', 'init-ca', '--dir', ssl, '--configure', cfg, '--client-configuration', path.join(dir, 'client.cfg')], { encoding: 'utf8' });
  t.regex(init.stdout, /configured .*slapos\.cfg/);
  const config = parseConfig(readFileSync(cfg, 'utf8'), cfg);
  t.is(config.slapos.master_url, 'https://127.0.0.1:1');
  t.is(config.slapos.cert_file, path.join(ssl, 'computer-COMP-1.crt'));
  const repo = config.slapos.certificate_repository_path ?? '';
  t.is(repo, path.join(ssl, 'partition_pki'));
  t.is(statSync(repo).mode & 0o7777, 0o711, 'partition users open their files by name and list nothing');
  t.is(statSync(ssl).mode & 0o7777, 0o711);
  t.is(statSync(path.join(ssl, 'ca.key')).mode & 0o7777, 0o600);
  const again = await execFileAsync(process.execPath, [BIN, 'proxy', 'init-ca', '--dir', ssl, '--configure', cfg], { encoding: 'utf8' });
  t.regex(again.stdout, /already serves TLS.*left as it is/, 'a rerun changes nothing');

  const px = config.slapproxy;
  const store = new SqliteStore(path.join(dir, 'proxy.db'));
  const app = await buildMaster({
    store, defaultComputer: 'COMP-1',
    https: { key: readFileSync(px.server_key_file ?? ''), cert: readFileSync(px.server_cert_file ?? ''), ca: readFileSync(px.ca_file ?? '') },
    issuingCa: { certFile: px.ca_file ?? '', keyFile: px.ca_key_file ?? '' },
  });
  t.teardown(() => app.close());
  const url = `https://127.0.0.1:${await listenOnLoopback(app)}/`;
  const tls = (key: string, cert: string) => ({ key: readFileSync(key), cert: readFileSync(cert), ca: readFileSync(px.ca_file ?? '') });
  const node = new SlapClient(url, { tls: tls(config.slapos.key_file ?? '', config.slapos.cert_file ?? '') });
  const admin = new SlapClient(url, { tls: tls(path.join(ssl, 'user-admin.key'), path.join(ssl, 'user-admin.crt')) });
  t.teardown(() => Promise.all([node.close(), admin.close()]).then(() => undefined));
  await node.loadComputerConfigurationFromXML(computer('COMP-1', 2));
  t.is((await admin.requestComputerPartition(SR, 'a')).partitionId, 'slappart0');
  t.is((await admin.requestComputerPartition(SR, 'b')).partitionId, 'slappart1');

  // The node's certificate step, as in an instance pass, for each partition and its user.
  const [a, b] = [createUser(t), createUser(t)];
  for (const [id, user] of [['slappart0', a], ['slappart1', b]] as const) {
    const run = { id, user, settings: { certificateRepository: repo }, link: { certificate: (p: string) => node.getComputerPartitionCertificate('COMP-1', p) } };
    await certificateStep.run(run as unknown as PartitionRun);
    for (const ext of ['crt', 'key']) {
      const st = statSync(path.join(repo, `${id}.${ext}`));
      t.deepEqual([st.uid, st.gid, st.mode & 0o7777], [user.uid, user.gid, 0o400], `${id}.${ext}: the partition user's, 0400`);
    }
  }
  const filesOf = (id: string) => ({ key: path.join(repo, `${id}.key`), cert: path.join(repo, `${id}.crt`), ca: px.ca_file ?? '' });
  const computerFiles = { key: config.slapos.key_file ?? '', cert: config.slapos.cert_file ?? '', ca: px.ca_file ?? '' };
  const register = (id: string) => `${url}registerComputerPartition?computer_reference=COMP-1&computer_partition_reference=${id}`;
  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const connection = (id: string) => form({ computer_id: 'COMP-1', computer_partition_id: id, connection_xml: '<?xml version=\'1.0\' encoding=\'utf-8\'?><marshal><dictionary id=\'i2\'><string>url</string><string>x</string></dictionary></marshal>' });
  const bang = (id: string) => form({ computer_id: 'COMP-1', computer_partition_id: id, message: 'x' });

  t.is(await callAs(a, filesOf('slappart0'), 'GET', register('slappart0')), '200', 'A with its own files: its partition');
  t.is(await callAs(a, filesOf('slappart0'), 'POST', `${url}setComputerPartitionConnectionXml`, connection('slappart0')), '200');
  t.is(await callAs(a, filesOf('slappart0'), 'GET', register('slappart1')), '403', 'not B\'s parameters');
  t.is(await callAs(a, filesOf('slappart0'), 'POST', `${url}setComputerPartitionConnectionXml`, connection('slappart1')), '403', 'not B\'s connection parameters');
  t.is(await callAs(a, filesOf('slappart0'), 'POST', `${url}softwareInstanceBang`, bang('slappart1')), '403', 'no bang of B');
  t.is(await callAs(a, filesOf('slappart0'), 'GET', `${url}getFullComputerInformation?computer_id=COMP-1`), '403', 'not the whole computer');
  t.is(await callAs(a, filesOf('slappart1'), 'GET', register('slappart1')), 'EACCES', 'B\'s key is not readable by A');
  t.is(await callAs(a, computerFiles, 'GET', register('slappart1')), 'EACCES', 'nor the computer\'s');
  t.is(await callAs(b, filesOf('slappart1'), 'POST', `${url}softwareInstanceBang`, bang('slappart1')), '200', 'B bangs itself');
  t.is(await callAs(undefined, computerFiles, 'GET', register('slappart1')), '200', 'root with the computer certificate: any partition');
  t.is(await callAs(undefined, computerFiles, 'POST', `${url}setComputerPartitionConnectionXml`, connection('slappart1')), '200');
  t.deepEqual((await admin.requestComputerPartition(SR, 'a')).connectionParameters, { url: 'x' }, 'A\'s own write went through');
});
