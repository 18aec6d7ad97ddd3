import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, configPath, configWarnings, DEFAULT_CONFIG_PATH, loadConfig, parseConfig, requireKeys } from '../../src/config/load.js';
import { closestName } from '../../src/config/suggest.js';
import { ALIASES, collectSection, SECTIONS } from '../../src/config/schema.js';
import { parseBytes } from '../../src/config/types.js';
import { resolveSettings } from '../../src/format/settings.js';
import { repoRoot, tempDir } from '../helpers/system.js';

const GOOD = `[slapos]
computer_id = COMP-1
master_url = http://127.0.0.1:8080
software_root = /opt/slapgrid
instance_root = /srv/slapgrid
maximum_periodicity = 3600
software_min_free_space = 2Gi
partition-timeout = 600
root_check = False

[slapformat]
partition_amount = 10
interface_name = br0
ipv4_local_network = 10.0.0.0/16
create_tap = true
tap_mode = bridge
partition_memory_max = 512M
computer_xml = /opt/slapos/slapos.xml

[networkcache]
download-binary-cache-url = http://cache.example/
`;

test('a good file gives typed values and defaults', (t) => {
  const config = parseConfig(GOOD, 'good.cfg');
  t.is(config.slapos.computer_id, 'COMP-1');
  t.is(config.slapos.maximum_periodicity, 3600);
  t.is(config.slapos.promise_timeout, 20, 'default');
  t.is(config.slapos.software_min_free_space, 2 ** 31);
  t.is(config.slapos.instance_min_free_space, 1_000_000_000, 'default 1000M');
  t.is(config.slapos.partition_timeout, 600, 'read from its dashed alias');
  t.false(config.slapos.root_check);
  t.is(config.slapformat.partition_amount, 10);
  t.true(config.slapformat.create_tap);
  t.false(config.slapformat.create_tun, 'default');
  t.is(config.slapformat.tap_mode, 'bridge');
  t.is(config.slapformat.software_user, 'slapsoft');
  t.is(config.slapformat.partition_memory_max, 512_000_000);
  t.is(config.networkcache['download-binary-cache-url'], 'http://cache.example/');
  t.is(config.slapproxy.port, 8080, 'absent section: defaults');
  t.deepEqual(config.unknownKeys, []);
});

test('the shipped slapos.cfg.example is valid and has no unknown key', (t) => {
  const config = loadConfig(path.join(repoRoot, 'slapos.cfg.example'));
  t.deepEqual(config.unknownKeys, []);
  t.truthy(requireKeys(config, 'slapos', ['computer_id', 'master_url', 'software_root', 'instance_root']));
  t.deepEqual(config.unknownSections, []);
});

test('slapos.cfg.example documents every key of every section, in its section', (t) => {
  const text = readFileSync(path.join(repoRoot, 'slapos.cfg.example'), 'utf8');
  const documented = new Map<string, Set<string>>();
  let section = '';
  for (const line of text.split('\n')) {
    const header = /^\[([^\]]+)\]/.exec(line);
    if (header) section = header[1] as string;
    const key = /^#?([A-Za-z][\w-]*) =/.exec(line);
    // The reference's other spelling of a key (ALIASES) documents it too.
    if (key && section) documented.set(section, (documented.get(section) ?? new Set()).add(ALIASES[section]?.[key[1] as string] ?? (key[1] as string)));
  }
  const sections: Record<string, { shape: Record<string, unknown> }> = { ...SECTIONS, collect: collectSection };
  for (const [name, schema] of Object.entries(sections)) {
    const shape = schema.shape;
    const missing = Object.keys(shape).filter((key) => !documented.get(name)?.has(key));
    t.deepEqual(missing, [], `[${name}] keys missing from slapos.cfg.example`);
  }
});

const bad: [string, string, RegExp, string?][] = [
  ['a bad boolean', GOOD.replace('create_tap = true', 'create_tap = yes'), /\[slapformat\] create_tap: must be true or false, got "yes"/, 'create_tap'],
  ['a bad number', GOOD.replace('partition_amount = 10', 'partition_amount = ten'), /\[slapformat\] partition_amount: must be a whole number/, 'partition_amount'],
  ['a negative number', GOOD.replace('partition_amount = 10', 'partition_amount = -1'), /partition_amount: must be between 0 and 10000/],
  ['a relative root', GOOD.replace('/srv/slapgrid', 'srv/slapgrid'), /\[slapos\] instance_root: must be an absolute path/, 'instance_root'],
  ['a bad URL', GOOD.replace('http://127.0.0.1:8080', 'ftp://x'), /\[slapos\] master_url: must be an http:\/\/ or https:\/\/ URL/],
  ['a bad size', GOOD.replace('2Gi', 'lots'), /software_min_free_space: must be a size/],
  ['a bad network', GOOD.replace('10.0.0.0/16', '10.0.0.300/16'), /ipv4_local_network: must be an IPv4 network/],
  ['a bad tap mode', GOOD.replace('tap_mode = bridge', 'tap_mode = switch'), /tap_mode: must be one of bridge, route/],
  ['a deprecated key', GOOD.replace('[slapformat]\n', '[slapformat]\nbridge_name = br0\n'), /\[slapformat\] bridge_name: no longer supported/],
  ['a syntax error', GOOD.replace('[networkcache]', 'this is not ini\n[networkcache]'), /line \d+: expected "key = value"/],
];
for (const [what, text, message, key] of bad) {
  test(`${what} gives one clear error naming the key and the file`, (t) => {
    const error = t.throws(() => parseConfig(text, '/etc/opt/slapos/slapos.cfg'), { instanceOf: ConfigError });
    t.regex(error?.message ?? '', message);
    t.is(error?.file, '/etc/opt/slapos/slapos.cfg');
    if (key) t.is(error?.key, key);
  });
}

test('unknown keys are collected for a warning, not fatal', (t) => {
  const config = parseConfig(GOOD.replace('[slapformat]\n', '[slapformat]\npartition_amout = 3\n'), 'x.cfg');
  t.deepEqual(config.unknownKeys, ['[slapformat] partition_amout']);
});

test('unknown sections are warned like unknown keys, with the closest known name', (t) => {
  const text = GOOD.replace('[slapformat]\n', '[slapfromat]\ncomputer_xml = /x.xml\n\n[slapformat]\npartition_amout = 3\n') +
    '\n[manager:devperm]\nallowed-disk-for-vm = /dev/sdb\n\n[multimaster/https://other.example]\nkey = /k\n\n[firewall]\n\n[collect]\n\n[something_else]\n';
  const config = parseConfig(text, 'x.cfg');
  t.deepEqual(config.unknownSections, ['slapfromat', 'something_else']);
  t.deepEqual(configWarnings(config), [
    'x.cfg: unknown section [slapfromat] (ignored; did you mean [slapformat]?)',
    'x.cfg: unknown section [something_else] (ignored)',
    'x.cfg: unknown key [slapformat] partition_amout (ignored; did you mean partition_amount?)',
  ]);
  t.deepEqual(configWarnings(parseConfig(GOOD, 'x.cfg')), []);
});

test('closest names: typos are matched, unrelated words are not', (t) => {
  t.is(closestName('slapfromat', ['slapos', 'slapformat', 'networkcache']), 'slapformat');
  t.is(closestName('computerid', ['computer_id', 'master_url']), 'computer_id');
  t.is(closestName('Slapos', ['slapos']), 'slapos');
  t.is(closestName('foo', ['slapos', 'collect']), undefined);
  t.is(closestName('xyz', []), undefined);
});

test('[slapproxy] software_product_list is a known key', (t) => {
  const config = parseConfig('[slapproxy]\nsoftware_product_list = kvm https://example.invalid/kvm.cfg\n', 'x.cfg');
  t.deepEqual(config.unknownKeys, []);
  t.is(config.slapproxy.software_product_list, 'kvm https://example.invalid/kvm.cfg');
});

test('requireKeys names every missing key', (t) => {
  const config = parseConfig('[slapos]\ncomputer_id = C\n', 'min.cfg');
  const error = t.throws(() => requireKeys(config, 'slapos', ['computer_id', 'master_url', 'instance_root']), { instanceOf: ConfigError });
  t.is(error?.message, 'missing required keys [slapos] master_url, [slapos] instance_root');
  t.is(error?.key, 'master_url');
});

test('the file is found from --cfg, then $SLAPOS_CONFIGURATION, then the default', (t) => {
  t.is(configPath('/a.cfg', { SLAPOS_CONFIGURATION: '/b.cfg' }), '/a.cfg');
  t.is(configPath(undefined, { SLAPOS_CONFIGURATION: '/b.cfg' }), '/b.cfg');
  t.is(configPath(undefined, {}), DEFAULT_CONFIG_PATH);
});

test('a missing file says so and how to give one', (t) => {
  const dir = tempDir(t);
  const error = t.throws(() => loadConfig(path.join(dir, 'nope.cfg')), { instanceOf: ConfigError });
  t.regex(error?.message ?? '', /no such file \(give one with --cfg or \$SLAPOS_CONFIGURATION\)/);
  writeFileSync(path.join(dir, 'ok.cfg'), GOOD);
  t.is(loadConfig(path.join(dir, 'ok.cfg')).slapos.computer_id, 'COMP-1');
});

test('sizes as the reference writes them', (t) => {
  t.is(parseBytes('1000M'), 1_000_000_000);
  t.is(parseBytes('1Ki'), 1024);
  t.is(parseBytes('2 GB'), 2e9);
  t.is(parseBytes('42'), 42);
  t.is(parseBytes('1.5Mi'), 1_572_864);
  t.is(parseBytes('12X'), undefined);
  t.is(parseBytes(''), undefined);
});

test('[slapformat] keys set in [slapos] are overrides, typed, not unknown keys', (t) => {
  const text = GOOD.replace('root_check = False\n', 'root_check = False\npartition_amount = 3\ncomputer_xml = /srv/old.xml\nnot_a_key = 1\n');
  const config = parseConfig(text, 'x.cfg');
  t.deepEqual(config.slapformatOverrides, { partition_amount: 3, computer_xml: '/srv/old.xml' });
  t.deepEqual(config.unknownKeys, ['[slapos] not_a_key']);
  t.is(config.slapformat.partition_amount, 10, '[slapformat] itself is read as written');
  t.deepEqual(parseConfig(GOOD, 'x.cfg').slapformatOverrides, {});
  // A bad value is an error that names [slapos], where the key is.
  const bad = t.throws(() => parseConfig(GOOD.replace('root_check = False\n', 'root_check = False\ncreate_tap = yes\n'), 'x.cfg'), { instanceOf: ConfigError });
  t.regex(bad?.message ?? '', /^\[slapos\] create_tap: must be true or false, got "yes"/);
  t.like(bad, { section: 'slapos', key: 'create_tap' });
  // A [DEFAULT] key reaches both sections alike: not an override.
  t.deepEqual(parseConfig(`[DEFAULT]\ncreate_tun = true\n\n${GOOD}`, 'x.cfg').slapformatOverrides, {});
});

test('format applies [slapos] overrides over [slapformat] (the reference precedence) with one warning', (t) => {
  const text = GOOD.replace('root_check = False\n', 'root_check = False\npartition_amount = 3\ncomputer_xml = /srv/old.xml\n');
  const warnings: string[] = [];
  const settings = resolveSettings(parseConfig(text, 'x.cfg'), {}, (m) => warnings.push(m));
  t.is(settings.partitionAmount, 3);
  t.is(settings.computerXml, '/srv/old.xml');
  t.is(settings.interfaceName, 'br0', '[slapformat] keys not overridden stay');
  t.deepEqual(warnings, ['x.cfg: [slapos] partition_amount, computer_xml override [slapformat] (as slapos.core does); move them to [slapformat]']);
  const none: string[] = [];
  t.is(resolveSettings(parseConfig(GOOD, 'x.cfg'), {}, (m) => none.push(m)).partitionAmount, 10);
  t.deepEqual(none, []);
});

test('format warns that tap_gateway_interface is not supported', (t) => {
  const warnings: string[] = [];
  resolveSettings(parseConfig(GOOD.replace('[slapformat]\n', '[slapformat]\ntap_gateway_interface = eth1\n'), 'x.cfg'), {}, (m) => warnings.push(m));
  t.deepEqual(warnings, ['x.cfg: [slapformat] tap_gateway_interface = eth1 is not supported yet: taps get no IPv4 from that interface\'s subnet (their ipv4_* fields stay empty)']);
});
