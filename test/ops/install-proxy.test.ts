// install.sh --proxy sets the master up with TLS by default (issue 23): a CA,
// the master's, the node's and admin's certificates, the configuration's keys
// and root's client configuration; a rerun changes nothing.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { repoRoot, tempDir } from '../helpers/system.js';

test.serial('install.sh --proxy: TLS by default, the node\'s certificate, root\'s client configuration; idempotent', (t) => {
  const root = tempDir(t);
  const sh = () => execFileSync(path.join(repoRoot, 'install.sh'), ['--root', root, '--no-deps', '--no-enable', '--proxy'], { encoding: 'utf8' });
  const out = sh();
  t.regex(out, /the master serves HTTPS with client certificates, the node uses https:\/\/127\.0\.0\.1:8080\/ as COMP-0000/);
  const ssl = path.join(root, 'etc', 'opt', 'slapos', 'ssl');
  const cfgFile = path.join(root, 'etc', 'opt', 'slapos', 'slapos.cfg');
  const cfg = parseConfig(readFileSync(cfgFile, 'utf8'), cfgFile);
  t.is(cfg.slapos.master_url, 'https://127.0.0.1:8080');
  t.is(cfg.slapos.cert_file, path.join(ssl, 'computer-COMP-0000.crt'));
  t.is(cfg.slapos.master_ca_file, path.join(ssl, 'ca.crt'));
  t.is(cfg.slapos.certificate_repository_path, '/etc/opt/slapos/ssl/partition_pki', 'the example\'s repository is kept (format makes it, 0711)');
  t.is(cfg.slapproxy.server_key_file, path.join(ssl, 'server.key'));
  t.is(cfg.slapproxy.ca_key_file, path.join(ssl, 'ca.key'));
  t.is(statSync(cfgFile).mode & 0o777, 0o640, 'the configuration keeps its mode');
  for (const key of ['ca.key', 'server.key', 'computer-COMP-0000.key', 'user-admin.key']) t.is(statSync(path.join(ssl, key)).mode & 0o777, 0o600, key);
  const client = readFileSync(path.join(root, 'root', '.slapos', 'slapos-client.cfg'), 'utf8');
  t.regex(client, /master_url = https:\/\/127\.0\.0\.1:8080\nkey_file = .*user-admin\.key\ncert_file = .*user-admin\.crt/);
  const before = readFileSync(cfgFile, 'utf8');
  const again = sh();
  t.regex(again, /already serves TLS.*left as it is/);
  t.regex(again, /slapos-client\.cfg kept as it is/);
  t.is(readFileSync(cfgFile, 'utf8'), before, 'a rerun changes nothing');
});
