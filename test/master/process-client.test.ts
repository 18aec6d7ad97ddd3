// `slapos proxy start` configured by slapos.cfg: [slapproxy] software_product_list
// and a [multimaster/<url>] section, with two master processes; a bad section
// stops the start with a message naming it.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { SlapClient } from '../../src/slap/client.js';
import { BIN, freePort, startProxy, waitListening } from '../helpers/proxy-process.js';
import { tempDir } from '../helpers/master.js';
import { computer } from '../helpers/semantics-suite.js';

const SR = '/opt/sr/trivial/software.cfg';

async function proxy(t: ExecutionContext, computerId: string, extra: string) {
  const dir = tempDir(t);
  const port = await freePort();
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\ncomputer_id = ${computerId}\nmaster_url = http://127.0.0.1:${port}\n` +
    `[slapproxy]\nhost = 127.0.0.1\nport = ${port}\ndatabase_uri = ${path.join(dir, 'proxy.db')}\n${extra}`);
  const child = startProxy(t, cfg);
  return { child, cfg, url: `http://127.0.0.1:${port}/` };
}

test('two master processes: products from slapos.cfg, a release forwarded to the [multimaster/…] master', async (t) => {
  const b = await proxy(t, 'COMP-B', '');
  await waitListening(b.child, `${b.url}getRunId`);
  const a = await proxy(t, 'COMP-A', 'software_product_list =\n  trivial /opt/sr/trivial/software.cfg\n' +
    `[multimaster/${b.url}]\nsoftware_release_list =\n  /opt/sr/forwarded/software.cfg\n`);
  await waitListening(a.child, `${a.url}getRunId`);
  const ca = new SlapClient(a.url);
  const cb = new SlapClient(b.url);
  t.teardown(async () => { await ca.close(); await cb.close(); });
  await ca.loadComputerConfigurationFromXML(computer('COMP-A', 1));
  await cb.loadComputerConfigurationFromXML(computer('COMP-B', 1));
  const products = await request(`${a.url}getSoftwareReleaseListFromSoftwareProduct?software_product_reference=trivial`);
  t.is(await products.body.text(), `<marshal><list id="i2"><string>${SR}</string></list></marshal>`);
  const forwarded = await ca.requestComputerPartition('/opt/sr/forwarded/software.cfg', 'fwd');
  t.is(forwarded.computerId, 'COMP-B');
  const onB = await cb.getFullComputerInformation('COMP-B');
  t.is(onB.partitions[0]?.parameters?.instance_title, 'user_fwd');
  const onA = await ca.getFullComputerInformation('COMP-A');
  t.is(onA.partitions[0]?.softwareRelease, null, 'nothing allocated on A');

  // Our client CLI resolves product.<name> as the reference's does.
  const env = { SLAPOS_CLIENT_CONFIGURATION: a.cfg };
  const supply = await execa('node', [BIN, 'supply', 'product.trivial', 'COMP-A'], { env, reject: false });
  t.is(supply.stdout, `Supplied '${SR}' to be available`, supply.stderr);
  const req = await execa('node', [BIN, 'request', 'p0', 'product.trivial', '--json'], { env, reject: false });
  t.is(req.exitCode, 0, req.stderr);
  t.is((await ca.registerComputerPartition('COMP-A', 'slappart0')).softwareRelease?.url, SR);
  const unknown = await execa('node', [BIN, 'request', 'p1', 'product.nope'], { env, reject: false });
  t.is(unknown.exitCode, 1);
  t.regex(unknown.stderr, /No Software Release corresponding to this Software Product has been found/);
  const typo = await execa('node', [BIN, 'supply', SR, 'COMP-TYPO'], { env, reject: false });
  t.is(typo.exitCode, 1, 'supply to a computer that does not exist fails');
  t.regex(typo.stderr, /unknown computer COMP-TYPO/);
  t.false(typo.stdout.includes('next:'), 'no hint outside a terminal');
});

test('a [multimaster/…] section without software_release_list stops the start, naming the section', async (t) => {
  const a = await proxy(t, 'COMP-A', '[multimaster/http://127.0.0.1:9/]\nkey =\n');
  const result = await a.child;
  t.is(result.exitCode, 1);
  t.regex(String(result.all), /\[multimaster\/http:\/\/127\.0\.0\.1:9\/\]: software_release_list is required/);
});

test('a [multimaster/…] section whose certificate cannot be read stops the start, naming the section and file', async (t) => {
  const a = await proxy(t, 'COMP-A', '[multimaster/https://127.0.0.1:9/]\nsoftware_release_list =\nkey = /nonexistent/k.pem\ncert = /nonexistent/c.pem\n');
  const result = await a.child;
  t.is(result.exitCode, 1);
  t.regex(String(result.all), /\[multimaster\/https:\/\/127\.0\.0\.1:9\/\]: cannot read \/nonexistent\/k\.pem: ENOENT/);
});
