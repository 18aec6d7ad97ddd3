// TLS client certificates, as the real master authenticates: computers,
// partitions and users each limited to what they are (else 403), real
// per-partition certificates from the master's CA, revoked when freed.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { X509Certificate } from 'node:crypto';
import { Agent } from 'undici';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createCa, issueCertificate } from '../../src/master/certificates.js';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { SlapClient } from '../../src/slap/client.js';
import { SlapHttpError } from '../../src/slap/errors.js';
import { listenOnLoopback, tempDir } from '../helpers/master.js';
import { BIN, freePort, startProxy, waitListening } from '../helpers/proxy-process.js';
import { computer } from '../helpers/semantics-suite.js';

const SR = '/opt/sr/trivial/software.cfg';

async function setup(t: ExecutionContext) {
  const dir = tempDir(t);
  const ssl = path.join(dir, 'ssl');
  const init = await execa('node', [BIN, 'proxy', 'init-ca', '--dir', ssl, '--computer', 'COMP-1', '--computer', 'COMP-2', '--user', 'admin'], { reject: false });
  t.is(init.exitCode, 0, init.stderr);
  t.regex(init.stdout, /ca_key_file = /);
  // The node's and the client's settings, each with the https:// master_url it must now use.
  t.regex(init.stdout, /# a node \(slapos\.cfg\): master_url becomes https:\/\/[^\n]*\n\[slapos\]\nmaster_url = https:\/\/localhost:<port>\nkey_file = [^\n]*computer-COMP-1\.key\n/);
  t.regex(init.stdout, /# a client \(slapos-client\.cfg[^\n]*\n\[slapos\]\nmaster_url = https:\/\/localhost:<port>\nkey_file = [^\n]*user-admin\.key\ncert_file = [^\n]*user-admin\.crt\nmaster_ca_file = [^\n]*ca\.crt/);
  const file = (name: string) => readFileSync(path.join(ssl, name));
  const store = new SqliteStore(path.join(dir, 'proxy.db'));
  const app = await buildMaster({
    store, defaultComputer: 'COMP-1',
    https: { key: file('server.key'), cert: file('server.crt'), ca: file('ca.crt') },
    issuingCa: { certFile: path.join(ssl, 'ca.crt'), keyFile: path.join(ssl, 'ca.key') },
  });
  t.teardown(() => app.close());
  const url = `https://localhost:${await listenOnLoopback(app)}/`;
  const client = (key?: string | Buffer, cert?: string | Buffer) => {
    const c = new SlapClient(url, { tls: { ca: file('ca.crt'), ...(key && cert ? { key, cert } : {}) }, timeoutMs: 10_000 });
    t.teardown(() => c.close());
    return c;
  };
  return {
    dir, ssl, url, client,
    comp1: client(file('computer-COMP-1.key'), file('computer-COMP-1.crt')),
    comp2: client(file('computer-COMP-2.key'), file('computer-COMP-2.crt')),
    user: client(file('user-admin.key'), file('user-admin.crt')),
    anonymous: client(),
  };
}

const forbidden = { instanceOf: SlapHttpError, message: /HTTP 403/ };

test('computers, users and strangers get exactly their rights', async (t) => {
  const { comp1, comp2, user, anonymous } = await setup(t);
  await t.throwsAsync(anonymous.getFullComputerInformation('COMP-1'), forbidden);
  await t.throwsAsync(anonymous.call('GET', '', {}), forbidden, 'the status page too');
  await t.throwsAsync(comp2.loadComputerConfigurationFromXML(computer('COMP-1', 3)), forbidden, 'COMP-2 cannot format COMP-1');
  await comp1.loadComputerConfigurationFromXML(computer('COMP-1', 3));
  await t.throwsAsync(comp2.getFullComputerInformation('COMP-1'), forbidden);
  await t.throwsAsync(user.getFullComputerInformation('COMP-1'), forbidden);
  await t.throwsAsync(comp1.supplySupply(SR, 'COMP-1'), forbidden, 'a computer does not supply');
  await t.throwsAsync(comp1.requestComputerPartition(SR, 'x'), forbidden, 'a computer does not request');
  t.is(await user.supplySupply(SR, 'COMP-1'), `Supplied '${SR}' to be available`);
  await comp1.buildingSoftwareRelease(SR, 'COMP-1');
  await t.throwsAsync(comp2.availableSoftwareRelease(SR, 'COMP-1'), forbidden);
  const inst = await user.requestComputerPartition(SR, 'root');
  t.is(inst.partitionId, 'slappart0');
  const info = await comp1.getFullComputerInformation('COMP-1');
  t.is(info.partitions[0]?.parameters?.instance_title, 'root');
  t.true(Array.isArray((await user.jsonRpc('slapos.allDocs.v0.instance_tree_list') as { result_list: unknown[] }).result_list));
  await t.throwsAsync(comp1.jsonRpc('slapos.allDocs.v0.instance_tree_list'), forbidden);
  await t.throwsAsync(comp2.jsonRpc('slapos.allDocs.v0.compute_node_instance_list', { computer_guid: 'COMP-1' }), forbidden);
  await comp1.jsonRpc('slapos.allDocs.v0.compute_node_instance_list', { computer_guid: 'COMP-1' });
});

test('a partition certificate acts only as its partition, and is revoked when the partition is freed', async (t) => {
  const { dir, ssl, comp1, comp2, user, client } = await setup(t);
  await comp1.loadComputerConfigurationFromXML(computer('COMP-1', 3));
  const root = await user.requestComputerPartition(SR, 'root');
  const other = await user.requestComputerPartition(SR, 'other');
  await t.throwsAsync(comp2.getComputerPartitionCertificate('COMP-1', 'slappart0'), forbidden);
  const issued = await comp1.getComputerPartitionCertificate('COMP-1', root.partitionId ?? '');
  const x509 = new X509Certificate(issued.certificate);
  t.regex(x509.subject, /OU=partition/);
  t.regex(x509.subject, /CN=COMP-1\/slappart0/);
  t.true(x509.verify(new X509Certificate(readFileSync(path.join(ssl, 'ca.crt'))).publicKey), 'signed by the master CA');
  t.deepEqual(await comp1.getComputerPartitionCertificate('COMP-1', root.partitionId ?? ''), issued, 'stable across calls');
  t.deepEqual(await comp1.getComputerPartitionCertificate('COMP-1', 'slappart2'), { certificate: '', key: '' }, 'none for a free partition');

  const part = client(issued.key, issued.certificate);
  const self = await part.registerComputerPartition('COMP-1', 'slappart0');
  t.is(self.parameters?.instance_title, 'root');
  await part.setComputerPartitionConnectionXml('COMP-1', 'slappart0', { url: 'https://x' });
  await t.throwsAsync(part.registerComputerPartition('COMP-1', other.partitionId ?? ''), forbidden);
  await t.throwsAsync(part.setComputerPartitionConnectionXml('COMP-1', other.partitionId ?? '', { a: 'b' }), forbidden);
  await t.throwsAsync(part.getFullComputerInformation('COMP-1'), forbidden);
  await t.throwsAsync(part.requestComputerPartition(SR, 'rogue-root'), forbidden, 'no request outside its tree');
  await t.throwsAsync(part.requestComputerPartition(SR, 'c', { requester: { computerId: 'COMP-1', partitionId: other.partitionId ?? '' } }), forbidden);
  const child = await part.requestComputerPartition(SR, 'child', { requester: { computerId: 'COMP-1', partitionId: 'slappart0' } });
  t.is(child.partitionId, 'slappart2');

  // A certificate with the right name from another CA is refused.
  const foreign = { certFile: path.join(dir, 'f.crt'), keyFile: path.join(dir, 'f.key') };
  await createCa(foreign.certFile, foreign.keyFile, 'rogue');
  const forged = await issueCertificate(foreign, 'partition', 'COMP-1/slappart0');
  await t.throwsAsync(client(forged.key, forged.certificate).registerComputerPartition('COMP-1', 'slappart0'), forbidden);

  // Freeing the partition revokes its certificate.
  await user.requestComputerPartition(SR, 'other', { state: 'destroyed' });
  t.is(await comp1.destroyedComputerPartition('COMP-1', other.partitionId ?? ''), 'OK');
  await user.requestComputerPartition(SR, 'root', { state: 'destroyed' });
  await comp1.destroyedComputerPartition('COMP-1', 'slappart0');
  await comp1.destroyedComputerPartition('COMP-1', 'slappart2');
  t.is(await comp1.destroyedComputerPartition('COMP-1', 'slappart0'), 'OK');
  const again = client(issued.key, issued.certificate);
  await t.throwsAsync(again.registerComputerPartition('COMP-1', 'slappart0'), { message: /HTTP 403.*no longer/s });
});

test('slapos proxy start serves TLS from init-ca files, and the client CLI authenticates with [slapos] key_file/cert_file', async (t) => {
  const dir = tempDir(t);
  const ssl = path.join(dir, 'ssl');
  await execa('node', [BIN, 'proxy', 'init-ca', '--dir', ssl, '--computer', 'COMP-1', '--user', 'admin']);
  const port = await freePort();
  const master = path.join(dir, 'master.cfg');
  writeFileSync(master, [
    '[slapos]', 'computer_id = COMP-1', '[slapproxy]', 'host = 127.0.0.1', `port = ${port}`, `database_uri = ${path.join(dir, 'proxy.db')}`,
    `server_key_file = ${ssl}/server.key`, `server_cert_file = ${ssl}/server.crt`, `ca_file = ${ssl}/ca.crt`, `ca_key_file = ${ssl}/ca.key`, '',
  ].join('\n'));
  const proxy = startProxy(t, master);
  const url = `https://localhost:${port}/`;
  await waitListening(proxy, `${url}metrics`, new Agent({ connect: { ca: readFileSync(path.join(ssl, 'ca.crt')) } }));
  const userCfg = path.join(dir, 'user.cfg');
  writeFileSync(userCfg, `[slapos]\nmaster_url = ${url}\nkey_file = ${ssl}/user-admin.key\ncert_file = ${ssl}/user-admin.crt\nmaster_ca_file = ${ssl}/ca.crt\n`);
  const list = await execa('node', [BIN, '--cfg', userCfg, 'list', '--json'], { reject: false });
  t.is(list.exitCode, 0, list.stderr);
  t.deepEqual(JSON.parse(list.stdout), {});
  const anonymousCfg = path.join(dir, 'anonymous.cfg');
  writeFileSync(anonymousCfg, `[slapos]\nmaster_url = ${url}\nmaster_ca_file = ${ssl}/ca.crt\n`);
  const refused = await execa('node', [BIN, '--cfg', anonymousCfg, 'list'], { reject: false });
  t.is(refused.exitCode, 1);
  t.regex(refused.stderr, /403.*client certificate is required/s);
});

test('every write that names another object is refused: shared instance, partition, software release, computer', async (t) => {
  const { comp1, comp2, user, client } = await setup(t);
  await comp1.loadComputerConfigurationFromXML(computer('COMP-1', 3));
  await comp2.loadComputerConfigurationFromXML(computer('COMP-2', 1));
  t.is((await user.requestComputerPartition(SR, 'p0', { softwareType: 'a' })).partitionId, 'slappart0');
  t.is((await user.requestComputerPartition(SR, 'p1', { softwareType: 'b' })).partitionId, 'slappart1');
  t.is((await user.requestComputerPartition(SR, '_sharedX', { softwareType: 'b', shared: true })).partitionId, 'slappart1');
  const issued = await comp1.getComputerPartitionCertificate('COMP-1', 'slappart0');
  const part0 = client(issued.key, issued.certificate);
  // Shared instance hosted by slappart1: slappart0's own certificate is not enough (the probe got 200 and moved hosted_by).
  await t.throwsAsync(part0.setComputerPartitionConnectionXml('COMP-1', 'slappart0', { hijacked: 'yes' }, '__sharedX'), { instanceOf: SlapHttpError, message: /HTTP 403.*not hosted by partition slappart0/s });
  t.deepEqual((await user.requestComputerPartition(SR, '_sharedX', { softwareType: 'b', shared: true })).connectionParameters, {});
  await comp1.setComputerPartitionConnectionXml('COMP-1', 'slappart1', { url: 'https://ok' }, '__sharedX');
  t.deepEqual((await user.requestComputerPartition(SR, '_sharedX', { softwareType: 'b', shared: true })).connectionParameters, { url: 'https://ok' });
  // Partitions: another partition, or the same name on another computer.
  await t.throwsAsync(part0.setComputerPartitionConnectionXml('COMP-1', 'slappart1', { a: 'b' }), forbidden);
  await t.throwsAsync(part0.setComputerPartitionConnectionXml('COMP-2', 'slappart0', { a: 'b' }), forbidden);
  await t.throwsAsync(part0.softwareInstanceBang('COMP-1', 'slappart1', 'x'), forbidden);
  await t.throwsAsync(part0.softwareInstanceRename('COMP-1', 'slappart1', 'stolen'), forbidden);
  await t.throwsAsync(comp2.softwareInstanceBang('COMP-1', 'slappart0', 'x'), forbidden);
  await t.throwsAsync(comp2.startedComputerPartition('COMP-1', 'slappart0'), forbidden);
  await t.throwsAsync(comp2.destroyedComputerPartition('COMP-1', 'slappart0'), forbidden);
  // Software releases and computers: reports, usage and format only for oneself.
  await t.throwsAsync(comp2.buildingSoftwareRelease(SR, 'COMP-1'), forbidden);
  await t.throwsAsync(comp2.destroyedSoftwareRelease(SR, 'COMP-1'), forbidden);
  await t.throwsAsync(comp2.useComputer('COMP-1', '<journal/>'), forbidden);
  await t.throwsAsync(comp2.loadComputerConfigurationFromXML(computer('COMP-1', 1)), forbidden);
  await t.throwsAsync(part0.supplySupply(SR, 'COMP-1'), forbidden);
  const info = await comp1.getFullComputerInformation('COMP-1');
  t.deepEqual(info.partitions.map((p) => p.partitionId), ['slappart0', 'slappart1', 'slappart2'], 'COMP-1 is unchanged');
});
