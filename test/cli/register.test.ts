// `slapos computer token` and `slapos node register` against our master on
// loopback over TLS with client certificates: a user gets a one-time token,
// the node trades it for its computer certificate, writes slapos.cfg and
// ssl/, and that certificate then acts as the computer.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { SlapClient } from '../../src/slap/client.js';
import { listenOnLoopback, tempDir } from '../helpers/master.js';
import { BIN } from '../helpers/proxy-process.js';
import { computer } from '../helpers/semantics-suite.js';

async function setup(t: ExecutionContext) {
  const dir = tempDir(t);
  const ssl = path.join(dir, 'ssl');
  const init = await execa('node', [BIN, 'proxy', 'init-ca', '--dir', ssl, '--computer', 'COMP-1', '--user', 'admin'], { reject: false });
  t.is(init.exitCode, 0, init.stderr);
  const file = (name: string) => readFileSync(path.join(ssl, name));
  const store = new SqliteStore(path.join(dir, 'proxy.db'));
  const app = await buildMaster({
    store, defaultComputer: 'COMP-1',
    https: { key: file('server.key'), cert: file('server.crt'), ca: file('ca.crt') },
    issuingCa: { certFile: path.join(ssl, 'ca.crt'), keyFile: path.join(ssl, 'ca.key') },
  });
  t.teardown(() => app.close());
  const url = `https://localhost:${await listenOnLoopback(app)}`;
  const clientCfg = (who: string) => {
    const cfg = path.join(dir, `${who}.cfg`);
    writeFileSync(cfg, `[slapos]\nmaster_url = ${url}\nmaster_ca_file = ${path.join(ssl, 'ca.crt')}\n` +
      `cert_file = ${path.join(ssl, `${who}.crt`)}\nkey_file = ${path.join(ssl, `${who}.key`)}\n`);
    return cfg;
  };
  const slapos = (args: string[], cfg?: string) => execa('node', [BIN, ...args], { env: cfg ? { SLAPOS_CLIENT_CONFIGURATION: cfg } : {}, reject: false });
  return { dir, ssl, url, slapos, user: clientCfg('user-admin'), computer1: clientCfg('computer-COMP-1') };
}

test('a user token registers a node once; the node writes slapos.cfg and a certificate that acts as the computer', async (t) => {
  const { dir, ssl, url, slapos, user, computer1 } = await setup(t);
  const refused = await slapos(['computer', 'token'], computer1);
  t.is(refused.exitCode, 1, 'a computer does not hand out tokens');
  t.regex(refused.stderr, /HTTP 403/);
  const asked = await slapos(['computer', 'token', '--json'], user);
  t.is(asked.exitCode, 0, asked.stderr);
  const { token, expires_at: expires } = JSON.parse(asked.stdout) as { token: string; expires_at: string };
  t.regex(token, /^[A-Za-z0-9_-]{32}$/);
  t.true(Date.parse(expires) > Date.now());

  const etc = path.join(dir, 'etc-opt-slapos');
  mkdirSync(etc);
  writeFileSync(path.join(etc, 'slapos.cfg'), '[slapos]\ncomputer_id = OLD\n');
  const register = (name: string, tok: string) => slapos(['node', 'register', name, '--token', tok, '--master-url', url,
    '--master-ca-file', path.join(ssl, 'ca.crt'), '--slapos-configuration', etc, '--interface-name', 'br7', '--partition-number', '3', '-t']);
  const bad = await register('COMP-NEW', 'not-a-token');
  t.is(bad.exitCode, 1);
  t.regex(bad.stderr, /Access denied to the master .*token/);
  t.is(readFileSync(path.join(etc, 'slapos.cfg'), 'utf8'), '[slapos]\ncomputer_id = OLD\n', 'a refusal changes nothing');

  const done = await register('COMP-NEW', token);
  t.is(done.exitCode, 0, done.stderr);
  t.regex(done.stdout, /Node has successfully been configured as COMP-NEW/);
  t.is(readFileSync(path.join(`${etc}.old`, 'slapos.cfg'), 'utf8'), '[slapos]\ncomputer_id = OLD\n', 'the former configuration is moved aside');
  const cfg = readFileSync(path.join(etc, 'slapos.cfg'), 'utf8');
  for (const line of ['computer_id = COMP-NEW', `master_url = ${url}`, `key_file = ${path.join(etc, 'ssl', 'key')}`,
    `cert_file = ${path.join(etc, 'ssl', 'certificate')}`, `certificate_repository_path = ${path.join(etc, 'ssl', 'partition_pki')}`,
    'interface_name = br7', 'partition_amount = 3', 'create_tap = true', 'ipv4_local_network = 10.0.0.0/16']) {
    t.true(cfg.split('\n').includes(line), line);
  }
  t.is(statSync(path.join(etc, 'ssl', 'key')).mode & 0o777, 0o600);
  t.true(existsSync(path.join(etc, 'ssl', 'partition_pki')));
  const certificate = readFileSync(path.join(etc, 'ssl', 'certificate'));
  t.true(new X509Certificate(certificate).checkIssued(new X509Certificate(readFileSync(path.join(ssl, 'ca.crt')))));

  // The certificate authenticates as the new computer, and only as it.
  const node = new SlapClient(`${url}/`, { tls: { ca: readFileSync(path.join(ssl, 'ca.crt')), cert: certificate, key: readFileSync(path.join(etc, 'ssl', 'key')) } });
  t.teardown(() => node.close());
  await node.loadComputerConfigurationFromXML(computer('COMP-NEW', 2));
  t.is((await node.getFullComputerInformation('COMP-NEW')).partitions.length, 2);
  await t.throwsAsync(node.getFullComputerInformation('COMP-1'), { message: /HTTP 403/ });

  const again = await register('COMP-OTHER', token);
  t.is(again.exitCode, 1, 'a token is used once');
  t.regex(again.stderr, /Access denied/);
  const second = JSON.parse((await slapos(['computer', 'token', '--json'], user)).stdout) as { token: string };
  const taken = await register('COMP-NEW', second.token);
  t.is(taken.exitCode, 1);
  t.regex(taken.stderr, /The node name "COMP-NEW" is already in use/);
  const kept = await register('COMP-THIRD', second.token);
  t.is(kept.exitCode, 0, `a refused name does not use the token up: ${kept.stderr}`);
});

test('node register and computer token explain themselves', async (t) => {
  const help = await execa('node', [BIN, 'node', 'register', '--help']);
  for (const option of ['--token', '--master-url-web', '--partition-number', '--ipv4-local-network', '--ipv6-interface', '--create-tap', '--dry-run', '--login']) {
    t.true(help.stdout.includes(option), option);
  }
  t.regex((await execa('node', [BIN, 'computer', 'token', '--help'])).stdout, /one-time token/);
});
