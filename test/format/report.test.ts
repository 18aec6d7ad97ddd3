// The report to the master: the exact form POST, and an unreachable master (exit 2, state kept).
import test from 'ava';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { isRoot, repoRoot, tempDir, testName } from '../helpers/system.js';
import { removeTestCgroups, removeTestUsers } from '../helpers/format.js';
import { loadsState } from '../../src/format/state-file.js';

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
