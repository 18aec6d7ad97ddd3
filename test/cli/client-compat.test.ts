// Client commands as a user runs them (`service list|info`, `computer
// list|info`, `request`), against our master on loopback: the output the
// reference's client printed for the same state (test/fixtures/slap-traffic/README.md, "Step 10").
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { SlapClient } from '../../src/slap/client.js';
import { startTestMaster, tempDir } from '../helpers/master.js';
import { BIN } from '../helpers/proxy-process.js';
import { computer } from '../helpers/semantics-suite.js';

const SR = '/opt/sr/trivial/software.cfg';

async function setup(t: ExecutionContext, extra = '') {
  const master = await startTestMaster(t, 'COMP-H1');
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer('COMP-H1', 4));
  const cfg = path.join(tempDir(t), 'slapos-client.cfg');
  writeFileSync(cfg, `[slapos]\nmaster_url = ${master.url}\n${extra}`);
  const slapos = (...args: string[]) => execa('node', [BIN, ...args], { env: { SLAPOS_CLIENT_CONFIGURATION: cfg }, reject: false });
  return { master, client, cfg, slapos };
}

test('service list and info print what the reference prints; an unknown title exits 2', async (t) => {
  const { client, slapos } = await setup(t);
  // The reference's empty case (slapos/cli/list.py), not an empty JSON object.
  t.is((await slapos('service', 'list')).stdout, 'No existing service.');
  await client.requestComputerPartition(SR, 'inst0', { parameters: { foo: 'bar', unicode: 'é' } });
  await client.requestComputerPartition(SR, 'inst1', { softwareType: 'other', state: 'stopped' });
  await client.requestComputerPartition(SR, 'shared0', { shared: true, parameters: { foo: 'sharedfoo' } });
  await client.setComputerPartitionConnectionXml('COMP-H1', 'slappart0', { url: 'http://[fd00::1]:8080/' });
  const list = await slapos('service', 'list');
  t.is(list.exitCode, 0, list.stderr);
  t.is(list.stdout, `{\n  "inst0": "${SR}",\n  "inst1": "${SR}",\n  "shared0": "${SR}"\n}`);
  const info = await slapos('service', 'info', 'inst0');
  t.is(info.exitCode, 0, info.stderr);
  t.is(info.stdout, [
    '{', `  "software-url": "${SR}",`, '  "software-type": "default",', '  "shared": false,', '  "requested-state": "started",',
    '  "instance-parameters": {', '    "foo": "bar",', '    "unicode": "\\u00e9"', '  },',
    '  "connection-parameters": {', '    "url": "http://[fd00::1]:8080/"', '  },', '  "status": "unsupported"', '}',
  ].join('\n'));
  const stopped = JSON.parse((await slapos('service', 'info', 'inst1')).stdout) as Record<string, unknown>;
  t.like(stopped, { 'software-type': 'other', 'requested-state': 'stopped', shared: false });
  const shared = JSON.parse((await slapos('service', 'info', 'shared0')).stdout) as Record<string, unknown>;
  t.like(shared, { shared: true, 'requested-state': 'unused', 'instance-parameters': { foo: 'sharedfoo' } });
  const nope = await slapos('service', 'info', 'nope');
  t.is(nope.exitCode, 2);
  t.regex(nope.stderr, /Instance nope does not exist\./);
  t.is(nope.stdout, '');
});

test('computer list and info print what the reference prints; an unknown reference exits 2', async (t) => {
  const { slapos } = await setup(t);
  const list = await slapos('computer', 'list');
  t.is(list.exitCode, 0, list.stderr);
  t.is(list.stdout, 'List of Computers:\nCOMP-H1 COMP-H1');
  t.deepEqual(JSON.parse((await slapos('computer', 'list', '--json')).stdout), [{ reference: 'COMP-H1', title: 'COMP-H1' }]);
  const info = await slapos('computer', 'info', 'COMP-H1');
  t.is(info.exitCode, 0, info.stderr);
  t.is(info.stdout, 'Computer Reference: COMP-H1\nComputer Title    : COMP-H1');
  const nope = await slapos('computer', 'info', 'COMP-NOPE');
  t.is(nope.exitCode, 2);
  t.regex(nope.stderr, /Computer COMP-NOPE does not exist\./);
});

test('master_rest_url is a known key and is the HATEOAS root used', async (t) => {
  const { master, slapos } = await setup(t, 'master_rest_url = URL/hateoas\n');
  const cfgWith = await setup(t, `master_rest_url = ${master.url}hateoas\n`);
  const ok = await cfgWith.slapos('computer', 'list');
  t.is(ok.exitCode, 0, ok.stderr);
  t.notRegex(ok.stderr, /unknown key/);
  const bad = await slapos('computer', 'list');
  t.is(bad.exitCode, 1);
  t.regex(bad.stderr, /master_rest_url/);
});

test('request --state destroyed of a never-requested instance says destroyed and takes no partition; destroyed of an unknown partition is 200', async (t) => {
  const { client, slapos } = await setup(t);
  const gone = await slapos('request', 'never', SR, '--state', 'destroyed');
  t.is(gone.exitCode, 0, gone.stderr);
  t.regex(gone.stdout, /State is : destroyed/);
  const info = await client.getFullComputerInformation('COMP-H1');
  t.true(info.partitions.every((p) => p.softwareRelease === null), 'no partition taken');
  t.is(await client.destroyedComputerPartition('COMP-H1', 'slappart9'), "Unknown partition 'slappart9' on 'COMP-H1'");
});

test("proxy show lists the master's database as the reference's tables; parts can be chosen", async (t) => {
  const { master, client, slapos } = await setup(t);
  await client.supplySupply(SR, 'COMP-H1');
  await client.requestComputerPartition(SR, 'inst0');
  await client.setComputerPartitionConnectionXml('COMP-H1', 'slappart0', { _: '{"b": 1, "a": "x"}' });
  const computers = await slapos('proxy', 'show', '-u', master.dbFile, '--computers');
  t.is(computers.exitCode, 0, computers.stderr);
  // prettytable(border, padding 0, no vertical rules): widths 9, 8, 11; centred, the odd space right of odd-length text.
  const rule = '-'.repeat(1 + 10 + 9 + 12);
  t.is(computers.stdout, ['table computer', rule, ' reference address    netmask   ', rule, '  COMP-H1  10.0.0.1 255.255.0.0 ', rule].join('\n'));
  const all = await slapos('proxy', 'show', '-u', master.dbFile);
  t.is(all.exitCode, 0, all.stderr);
  for (const expected of ['table software', 'md5', 'table partition: skipping xml, connection_xml, slave_instance_list', 'inst0',
    'table slave: empty', 'slappart0: inst0 (type default)', '    _ = {\n  "a": "x",\n  "b": 1\n}', 'slappart0: 10.0.1.0']) {
    t.true(all.stdout.includes(expected), `${expected} in:\n${all.stdout}`);
  }
  const missing = await slapos('proxy', 'show', '-u', `${master.dbFile}.nope`);
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /no such database/);
});

test('configure client writes a configuration the client commands use; console -e runs code with the client bound', async (t) => {
  const { master, client } = await setup(t);
  const dir = path.join(tempDir(t), 'dot-slapos');
  const env = { SLAPOS_CLIENT_CONFIGURATION: path.join(dir, 'slapos-client.cfg') };
  const run = (...args: string[]) => execa('node', [BIN, ...args], { env, reject: false });
  const configured = await run('configure', 'client', '--master-url', master.url, '--slapos-configuration-directory', dir);
  t.is(configured.exitCode, 0, configured.stderr);
  t.is((await run('configure', 'client', '--master-url', master.url, '--slapos-configuration-directory', dir)).exitCode, 1, 'an existing file is kept');
  t.is((await run('computer', 'list')).stdout, 'List of Computers:\nCOMP-H1 COMP-H1');
  await client.requestComputerPartition(SR, 'inst0');
  const evaluated = await run('console', '-e', "(await partition('COMP-H1', 'slappart0')).softwareRelease.url");
  t.is(evaluated.exitCode, 0, evaluated.stderr);
  t.is(evaluated.stdout, JSON.stringify(SR));
  const failed = await run('console', '-e', "await partition('COMP-H1', 'nope')");
  t.is(failed.exitCode, 1);
  t.regex(failed.stderr, /console: .*404/);
});

test('complete prints a bash (or zsh) completion script generated from the command tree', async (t) => {
  const script = await execa('node', [BIN, 'complete']);
  const completion = await execa('bash', ['-c', `${script.stdout}\nCOMP_WORDS=(slapos node pr); COMP_CWORD=2; _slapos; echo "\${COMPREPLY[@]}"\n` +
    'COMP_WORDS=(slapos service info --); COMP_CWORD=3; _slapos; echo "${COMPREPLY[@]}"']);
  t.deepEqual(completion.stdout.split('\n'), ['promise prune', '--news --cfg --verbose --quiet --log-file --help']);
  const zsh = await execa('node', [BIN, 'complete', '--shell', 'zsh']);
  t.regex(zsh.stdout, /bashcompinit/);
});
