// The `slapos` command as a user runs it: help, dispatch, exit statuses.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot, tempDir } from '../helpers/system.js';

const slapos = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'slapos.js'), ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, ...env },
  });

test('slapos --help lists the command families', (t) => {
  const result = slapos(['--help']);
  t.is(result.status, 0);
  for (const word of ['node', 'proxy', 'supply', 'request', 'list', 'info', 'remove', '--cfg', '--verbose', '--log-file']) {
    t.true(result.stdout.includes(word), `help mentions ${word}`);
  }
});

test('slapos node format --help explains the command and its options', (t) => {
  const result = slapos(['node', 'format', '--help']);
  t.is(result.status, 0);
  t.regex(result.stdout, /Usage: slapos node format/);
  t.regex(result.stdout, /partition_amount/);
  t.regex(result.stdout, /--dry-run/);
  t.regex(result.stdout, /Exit status: 0 formatted and reported, 1 failure, 2/);
});

test('every node sub-command has help', (t) => {
  for (const sub of ['format', 'software', 'instance', 'report', 'boot', 'status', 'collect', 'promise', 'bang', 'supervisord']) {
    const result = slapos(['node', sub, '--help']);
    t.is(result.status, 0, sub);
    t.regex(result.stdout, new RegExp(`Usage: slapos node ${sub}`));
  }
  t.is(slapos(['proxy', 'start', '--help']).status, 0);
});

test('an unknown sub-command exits 5, an unknown option or a missing argument 2 (as the reference)', (t) => {
  const unknown = slapos(['frobnicate']);
  t.is(unknown.status, 5);
  t.regex(unknown.stderr, /unknown command 'frobnicate'/);
  const option = slapos(['node', 'format', '--bogus']);
  t.is(option.status, 2);
  t.regex(option.stderr, /unknown option '--bogus'/);
  t.is(slapos(['supply']).status, 2, 'missing argument');
});

test('--version names the project and its version; --json adds the SLAP protocol level', (t) => {
  const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { name: string; version: string };
  const result = slapos(['--version']);
  t.is(result.status, 0);
  t.is(result.stdout, `${pkg.name} ${pkg.version} (SLAP protocol of slapos.core 1.24)\n`);
  t.is(slapos(['-V']).stdout, result.stdout);
  const json = slapos(['--version', '--json']);
  t.is(json.status, 0);
  t.deepEqual(JSON.parse(json.stdout), { name: pkg.name, version: pkg.version, slap_compatibility: 'slapos.core 1.24' });
  t.regex(slapos(['--help']).stdout, /--version/);
  t.is(slapos(['node', 'config', '--version', '--cfg', '/nonexistent']).stdout, result.stdout, 'after a sub-command too: prints, runs nothing');
});

test('a configuration error exits 1 with one message naming file and key', (t) => {
  const dir = tempDir(t);
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, '[slapos]\ncomputer_id = C\nroot_check = maybe\n');
  const result = slapos(['node', 'config', '--cfg', cfg]);
  t.is(result.status, 1);
  t.is(result.stderr, `ERROR configuration error code=CONFIG_INVALID path=${cfg} ([slapos] root_check: must be true or false, got "maybe")\n`);
  const viaEnv = slapos(['node', 'config'], { SLAPOS_CONFIGURATION: path.join(dir, 'missing.cfg') });
  t.is(viaEnv.status, 1);
  t.regex(viaEnv.stderr, /missing\.cfg \(cannot read configuration: no such file/);
});

test('slapos node config prints the effective values, and JSON for machines', (t) => {
  const dir = tempDir(t);
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, '[slapos]\ncomputer_id = C\nmystery = 1\n[slapformat]\npartition_amount = 3\n');
  const text = slapos(['node', 'config'], { SLAPOS_CONFIGURATION: cfg });
  t.is(text.status, 0);
  t.regex(text.stdout, /^computer_id = C$/m);
  t.regex(text.stdout, /^maximum_periodicity = 86400$/m);
  t.regex(text.stderr, /unknown key \[slapos\] mystery/);
  const json = slapos(['node', 'config', '--json', '--cfg', cfg]);
  const parsed = JSON.parse(json.stdout) as { slapformat: { partition_amount: number; tap_base_name: string }; unknownKeys: string[] };
  t.is(parsed.slapformat.partition_amount, 3);
  t.is(parsed.slapformat.tap_base_name, 'slaptap');
  t.deepEqual(parsed.unknownKeys, ['[slapos] mystery']);
});


test('node config warns about a misspelt section and says so in its verdict', (t) => {
  const dir = tempDir(t);
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, '[slapos]\ncomputer_id = C\n\n[slapfromat]\ncomputer_xml = /x.xml\n');
  const result = slapos(['node', 'config', '--cfg', cfg]);
  t.is(result.status, 0, result.stderr);
  t.regex(result.stderr, /unknown section \[slapfromat\] \(ignored; did you mean \[slapformat\]\?\)/);
  t.regex(result.stdout, /valid \(1 unknown name ignored: see the warnings\)/);
});

test('client commands name the variable they read ($SLAPOS_CLIENT_CONFIGURATION) when their file is missing', (t) => {
  const home = tempDir(t);
  const result = slapos(['list'], { HOME: home });
  t.is(result.status, 1);
  t.regex(result.stderr, new RegExp(`${home}/\\.slapos/slapos-client\\.cfg \\(cannot read configuration: no such file \\(give one with --cfg or \\$SLAPOS_CLIENT_CONFIGURATION\\)`));
  const node = slapos(['node', 'config'], { SLAPOS_CONFIGURATION: `${home}/none.cfg` });
  t.regex(node.stderr, /give one with --cfg or \$SLAPOS_CONFIGURATION\)/);
});

test('node config checks [collect]: a bad value fails now, a misspelt key is warned about', (t) => {
  const dir = tempDir(t);
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, '[slapos]\ncomputer_id = C\ninstance_root = /srv/slapgrid\n[collect]\nreport_period = abc\n');
  const bad = slapos(['node', 'config', '--cfg', cfg]);
  t.is(bad.status, 1);
  t.regex(bad.stderr, /\[collect\] report_period/);
  writeFileSync(cfg, '[slapos]\ncomputer_id = C\ninstance_root = /srv/slapgrid\n[collect]\nreport_perod = 600\n');
  const typo = slapos(['node', 'config', '--cfg', cfg]);
  t.is(typo.status, 0, typo.stderr);
  t.regex(typo.stderr, /unknown key \[collect\] report_perod/);
  t.regex(typo.stdout, /^\[collect\]$/m);
  t.regex(typo.stdout, /^report_period = \d+$/m);
});

test("node software and instance take the reference's slapgrid options, checked as slapos.cfg's keys", (t) => {
  for (const [sub, only] of [['software', '--only-sr'], ['instance', '--only-cp']] as const) {
    const help = slapos(['node', sub, '--help']).stdout;
    for (const flag of ['--only ', only, '--buildout ', '--buildout-debug', '--master-url', '--computer-id', '--software-root', '--instance-root',
      '--key_file', '--cert_file', '--master_ca_file', '--maximal_delay', '--pidfile', '--promise-timeout', '--partition-timeout', '--supervisord-socket']) {
      t.true(help.includes(flag), `${sub} --help lists ${flag}`);
    }
  }
  const dir = tempDir(t);
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, '[slapos]\ncomputer_id = C\nmaster_url = http://127.0.0.1:9\nsoftware_root = /opt/x\ninstance_root = /srv/x\n');
  const bad = slapos(['node', 'instance', '--cfg', cfg, '--software-root', 'relative/dir', '--now']);
  t.is(bad.status, 1);
  t.regex(bad.stderr, /--software-root: /);
  const delay = slapos(['node', 'software', '--cfg', cfg, '--maximal_delay', 'soon']);
  t.is(delay.status, 1);
  t.regex(delay.stderr, /--maximal_delay: /);
  const both = slapos(['node', 'software', '--cfg', cfg, '--only', 'a', '--only-sr', 'b']);
  t.is(both.status, 1);
  t.regex(both.stderr, /give --only or --only-sr, not both/);
});

test("node format takes the reference's spellings, definition files included", (t) => {
  const help = slapos(['node', 'format', '--help']).stdout;
  for (const flag of ['--alter_user', '--alter_network', '--computer_json', '--computer_xml', '-i, --input_definition_file', '-o, --output_definition_file', '-c, --console']) {
    t.true(help.includes(flag), `format --help lists ${flag}`);
  }
  // Checked once the configuration is read: a missing one is the error here.
  const missing = slapos(['node', 'format', '-o', '/tmp/def.cfg', '--cfg', '/nonexistent']);
  t.is(missing.status, 1);
  t.regex(missing.stderr, /cannot read configuration/);
  const disagree = slapos(['node', 'format', '--alter_user', 'false', '--alter-user', 'true', '--cfg', '/nonexistent']);
  t.is(disagree.status, 1);
  t.regex(disagree.stderr, /--alter_user and --alter-user disagree/);
});

test('request --force-serialisation takes xml or json-in-xml; proxy start takes --host, --port, --database-uri', (t) => {
  t.regex(slapos(['request', '--help']).stdout, /--force-serialisation <kind>/);
  const bad = slapos(['request', 'a', 'b', '--force-serialisation', 'yaml']);
  t.is(bad.status, 2);
  t.regex(bad.stderr, /Allowed choices are xml, json-in-xml/);
  const help = slapos(['proxy', 'start', '--help']).stdout;
  for (const flag of ['--host', '--port', '-u, --database-uri']) t.true(help.includes(flag), flag);
});

test("the reference's commands exist, each with its own help listing its options", (t) => {
  const cases: Array<[string[], string[]]> = [
    [['service', 'list'], []], [['service', 'info'], ['--news']], [['computer', 'list'], ['--json']], [['computer', 'info'], ['--json']],
    [['node', 'start'], ['args']], [['node', 'stop'], ['args']], [['node', 'restart'], ['args']], [['node', 'tail'], ['args']],
    [['node', 'status'], ['--plain']], [['node', 'prune'], ['--dry-run', '--additional-software-directory']],
    [['proxy', 'show'], ['--database-uri', '--computers', '--software', '--partitions', '--slaves', '--params', '--network']],
    [['configure', 'client'], ['--master-url', '--cert-file', '--key-file']], [['console'], ['--eval']], [['complete'], ['--shell']],
    [['computer', 'token'], ['--json']], [['node', 'register'], ['--token', '--master-url', '--master-url-web', '--partition-number', '--ipv4-local-network', '--ipv6-interface', '--create-tap', '--dry-run']],
    [['configure', 'local'], ['--interface-name', '--partition-number', '--daemon-listen-ip', '--daemon-listen-port', '--slapos-configuration-directory']],
  ];
  for (const [words, flags] of cases) {
    const result = slapos([...words, '--help']);
    t.is(result.status, 0, words.join(' '));
    t.regex(result.stdout, new RegExp(`Usage: slapos ${words.join(' ')}`));
    for (const flag of flags) t.true(result.stdout.includes(flag), `${words.join(' ')} --help lists ${flag}`);
  }
});
