// The report to the master: the exact form POST, and an unreachable master (exit 2, state kept).
import test from 'ava';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { isRoot, repoRoot, tempDir, testName } from '../helpers/system.js';
import { removeTestCgroups, removeTestUsers } from '../helpers/format.js';
import { loadsState } from '../../src/format/state-file.js';
import { sortedJson } from '../../src/format/computer.js';

const rootOnly = isRoot ? test.serial : test.skip;

function config(dir: string, prefix: string, master: string): string {
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\ncomputer_id = COMP-R\nmaster_url = ${master}\nsoftware_root = ${dir}/soft\ninstance_root = ${dir}/inst\n\n` +
    `[slapformat]\npartition_amount = 2\nalter_network = false\ncreate_tap = false\ncomputer_xml = ${dir}/slapos.xml\n` +
    `partition_base_name = ${prefix}p\nuser_base_name = ${prefix}u\nsoftware_user = ${prefix}s\ntap_base_name = ${prefix}t\ncgroup_parent = ${prefix}cg\n`);
  return cfg;
}

function cli(cfg: string): Promise<{ status: number | null; stderr: string }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'slapos.js'), 'node', 'format', '--cfg', cfg, '--now'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stderr })));
}

rootOnly('the computer is POSTed to loadComputerConfigurationFromXML as a form with the marshalled dict', async (t) => {
  const prefix = testName('slt');
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  t.teardown(() => { removeTestUsers(prefix); removeTestCgroups(`${prefix}cg`); });
  const seen: { method?: string; url?: string; type?: string; body: string }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => { seen.push({ method: req.method, url: req.url, type: req.headers['content-type'], body }); res.end('done'); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const result = await cli(config(dir, prefix, `http://127.0.0.1:${port}/`));
  t.is(result.status, 0, result.stderr);
  t.is(seen.length, 1);
  t.like(seen[0], { method: 'POST', url: '/loadComputerConfigurationFromXML', type: 'application/x-www-form-urlencoded' });
  const xml = new URLSearchParams(seen[0]?.body).get('xml') ?? '';
  t.true(xml.startsWith('<marshal><dictionary id="i2"><string>address</string>'));
  const computer = loadsState(xml) as unknown as { reference: string; partition_list: { reference: string; user: { name: string } }[] };
  t.is(computer.reference, 'COMP-R');
  t.deepEqual(computer.partition_list.map((p) => [p.reference, p.user.name]), [[`${prefix}p0`, `${prefix}u0`], [`${prefix}p1`, `${prefix}u1`]]);
});

rootOnly('master unreachable: formatted, state written, exit status 2', async (t) => {
  const prefix = testName('slt');
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  t.teardown(() => { removeTestUsers(prefix); removeTestCgroups(`${prefix}cg`); });
  const result = await cli(config(dir, prefix, 'http://127.0.0.1:9'));
  t.is(result.status, 2, result.stderr);
  // The human line: the message, its fields, then the error's message in parentheses.
  t.regex(result.stderr, /reporting to the master failed code=MASTER_REPORT_FAILED \(cannot reach the master at http:\/\/127\.0\.0\.1:9/);
  t.true(existsSync(path.join(dir, 'slapos.xml')));
  t.true(existsSync(path.join(dir, 'inst', `${prefix}p1`, '.slapos-resource')));
});

rootOnly('a re-run with nothing changed is not reported again; a change, another master or a lost record is', async (t) => {
  const prefix = testName('slt');
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  t.teardown(() => { removeTestUsers(prefix); removeTestCgroups(`${prefix}cg`); });
  const seen: string[] = [];
  let answer = 200;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => { seen.push(new URLSearchParams(body).get('xml') ?? ''); res.statusCode = answer; res.end(''); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const cfg = config(dir, prefix, url);
  // computer_json too: the recorded pair of state files is then read without marshalling.
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('[slapformat]\n', `[slapformat]\ncomputer_json = ${dir}/slapos.json\n`));
  const partitions = (xml: string) => (loadsState(xml) as unknown as { partition_list: unknown[] }).partition_list.length;
  const record = path.join(dir, 'slapos.xml.reported.json');

  t.is((await cli(cfg)).status, 0);
  t.is(seen.length, 1, 'the first run reports');
  t.true(existsSync(record));
  const files = () => ['slapos.xml', 'slapos.json', 'slapos.xml.reported.json'].map((f) => { const st = statSync(path.join(dir, f)); return `${f} ${st.ino} ${st.mtimeMs} ${st.size}`; });
  const written = files();
  const again = await cli(cfg);
  t.is(again.status, 0, again.stderr);
  t.is(seen.length, 1, 'nothing changed: not reported again');
  t.regex(again.stderr, /not reported again/);
  t.deepEqual(files(), written, 'nor any state file written');
  t.is(readFileSync(path.join(dir, 'slapos.json'), 'utf8'), sortedJson(loadsState(readFileSync(path.join(dir, 'slapos.xml'), 'utf8')), 2));

  // A changed partition list is reported.
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('partition_amount = 2', 'partition_amount = 3'));
  const changed = await cli(cfg);
  t.is(changed.status, 0, changed.stderr);
  t.is(seen.length, 2);
  t.is(partitions(seen[1] ?? ''), 3);
  t.is((await cli(cfg)).status, 0);
  t.is(seen.length, 2);

  // A report the master refuses is not recorded: the next run sends it again.
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('partition_amount = 3', 'partition_amount = 4'));
  answer = 500;
  t.is((await cli(cfg)).status, 2);
  t.is(seen.length, 3);
  answer = 200;
  t.is((await cli(cfg)).status, 0);
  t.is(seen.length, 4, 'refused last time: reported');
  t.is(partitions(seen[3] ?? ''), 4);
  t.is((await cli(cfg)).status, 0);
  t.is(seen.length, 4);

  // Without the record (lost, or removed by hand) the node reports again.
  rmSync(record);
  t.is((await cli(cfg)).status, 0);
  t.is(seen.length, 5);
  t.is(seen[4], seen[3], 'the same computer');
  // Another master URL for the same server: reported.
  writeFileSync(cfg, readFileSync(cfg, 'utf8').replace(`master_url = ${url}`, `master_url = ${url.replace('127.0.0.1', 'localhost')}`));
  t.is((await cli(cfg)).status, 0);
  t.is(seen.length, 6);
});
