// `slapos configure local` in a temporary root (every target path an option,
// the real /etc untouched): the written slapos.cfg loads, its master starts
// with the certificates made for it, the client and the node reach it.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Agent } from 'undici';
import { SlapClient } from '../../src/slap/client.js';
import { tempDir } from '../helpers/master.js';
import { BIN, freePort, startProxy, waitListening } from '../helpers/proxy-process.js';
import { computer } from '../helpers/semantics-suite.js';

test('configure local sets up master, node configuration, certificates, client and units; the master serves the node and the client', async (t) => {
  const root = tempDir(t);
  const at = (...parts: string[]) => path.join(root, ...parts);
  const port = await freePort();
  const args = ['configure', 'local', '--slapos-configuration-directory', at('etc'), '--slapos-buildout-directory', at('opt-slapos'),
    '--slapos-instance-root', at('srv'), '--slapos-software-root', at('opt-slapgrid'), '--client-configuration-directory', at('client'),
    '--systemd-root', at('sysroot'), '--daemon-listen-port', String(port), '--partition-number', '3'];
  const bad = await execa('node', [BIN, ...args, '--daemon-listen-ip', 'not-an-ip'], { reject: false });
  t.is(bad.exitCode, 1);
  t.regex(bad.stderr, /--daemon-listen-ip: not an IP address/);
  t.false(existsSync(at('etc')), 'bad input writes nothing');

  const done = await execa('node', [BIN, ...args], { reject: false });
  t.is(done.exitCode, 0, done.stderr);
  const cfg = at('etc', 'slapos.cfg');
  const text = readFileSync(cfg, 'utf8').split('\n');
  for (const line of ['computer_id = local_computer', `master_url = https://127.0.0.1:${port}`, `instance_root = ${at('srv')}`,
    'interface_name = lo', 'partition_amount = 3', `database_uri = ${at('opt-slapos', 'proxy.db')}`, `port = ${port}`,
    `ca_key_file = ${at('etc', 'ssl', 'ca.key')}`, `cert_file = ${at('etc', 'ssl', 'computer-local_computer.crt')}`]) {
    t.true(text.includes(line), line);
  }
  t.is(statSync(at('etc', 'ssl', 'ca.key')).mode & 0o777, 0o600);
  const config = await execa('node', [BIN, 'node', 'config', '--cfg', cfg, '--json'], { reject: false });
  t.is(config.exitCode, 0, `the written slapos.cfg loads: ${config.stderr}`);
  const units = readdirSync(at('sysroot', 'etc', 'systemd', 'system'));
  t.true(units.includes('slapos-proxy.service') && units.includes('slapos-node-format.service'), units.join(' '));
  t.true(readFileSync(at('sysroot', 'etc', 'systemd', 'system', 'slapos-node-format.service'), 'utf8').includes(cfg));

  const again = await execa('node', [BIN, ...args], { reject: false });
  t.is(again.exitCode, 1);
  t.regex(again.stderr, /already exists/);

  // The master the configuration describes, started from it.
  const ca = readFileSync(at('etc', 'ssl', 'ca.crt'));
  const master = startProxy(t, cfg);
  const dispatcher = new Agent({ connect: { ca, cert: readFileSync(at('etc', 'ssl', 'user-admin.crt')), key: readFileSync(at('etc', 'ssl', 'user-admin.key')) } });
  t.teardown(() => dispatcher.close());
  await waitListening(master, `https://127.0.0.1:${port}/status`, dispatcher);
  const node = new SlapClient(`https://127.0.0.1:${port}/`, {
    tls: { ca, cert: readFileSync(at('etc', 'ssl', 'computer-local_computer.crt')), key: readFileSync(at('etc', 'ssl', 'computer-local_computer.key')) },
  });
  t.teardown(() => node.close());
  await node.loadComputerConfigurationFromXML(computer('local_computer', 3));
  const listed = await execa('node', [BIN, 'computer', 'list'], { env: { SLAPOS_CLIENT_CONFIGURATION: at('client', 'slapos-client.cfg') }, reject: false });
  t.is(listed.exitCode, 0, listed.stderr);
  t.is(listed.stdout, 'List of Computers:\nlocal_computer local_computer');
});

test('configure local --help lists its options', async (t) => {
  const help = (await execa('node', [BIN, 'configure', 'local', '--help'])).stdout;
  for (const option of ['--interface-name', '--partition-number', '--ipv4-local-network', '--daemon-listen-ip', '--daemon-listen-port',
    '--slapos-instance-root', '--slapos-software-root', '--slapos-buildout-directory', '--slapos-configuration-directory', '--no-tls', '--enable']) {
    t.true(help.includes(option), option);
  }
});
