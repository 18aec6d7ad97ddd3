import test from 'ava';
import { setKeys } from '../../src/config/set-keys.js';
import { formerName } from '../../src/cli/commands/register.js';

test('setKeys sets active and commented keys in their section, adds missing ones, keeps comments', (t) => {
  const text = '# head\n[slapos]\ncomputer_id = COMP-0000\n#key_file = /x\n# trailing comment\n\n[slapformat]\ninterface_name = br0\ninterface_name = dup\n';
  t.is(setKeys(text, { slapos: { computer_id: 'C1', key_file: '/k', master_url: 'http://m' }, slapformat: { interface_name: 'eth1' }, other: { a: 'b' } }),
    '# head\n[slapos]\ncomputer_id = C1\nkey_file = /k\nmaster_url = http://m\n# trailing comment\n\n[slapformat]\ninterface_name = eth1\n#interface_name = dup\n\n[other]\na = b');
  t.is(setKeys('[a]\nx = 1\n[b]\nx = 2\n', { b: { x: '3' } }), '[a]\nx = 1\n[b]\nx = 3\n', 'only in the named section');
});

test('formerName counts up as the reference does', (t) => {
  const taken = new Set(['/e.old', '/e.old.1']);
  t.is(formerName('/e', (p) => taken.has(p)), '/e.old.2');
  t.is(formerName('/f', () => false), '/f.old');
});

test('configure local: --no-tls leaves out every certificate key and uses http', async (t) => {
  const { localKeys, masterUrlOf } = await import('../../src/cli/commands/configure-local.js');
  const plan = {
    configurationDirectory: '/e', buildoutDirectory: '/o', instanceRoot: '/srv', softwareRoot: '/sw', interfaceName: 'lo',
    partitionNumber: 2, ipv4LocalNetwork: '10.0.0.0/16', listenIp: '::1', listenPort: 8080, tls: false, user: 'admin',
  };
  t.is(masterUrlOf(plan), 'http://[::1]:8080');
  const keys = localKeys(plan);
  for (const section of Object.values(keys)) {
    for (const key of Object.keys(section)) t.false(/^(key_file|cert_file|master_ca_file|server_key_file|server_cert_file|ca_file|ca_key_file)$/.test(key), key);
  }
  t.is(localKeys({ ...plan, tls: true }).slapproxy?.ca_file, '/e/ssl/ca.crt');
});
