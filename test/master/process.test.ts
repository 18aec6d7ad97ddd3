// The master as a process: `slapos proxy start`, kill -9 after acknowledged
// writes loses nothing, SIGTERM stops cleanly; the client CLI against it.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { SlapClient } from '../../src/slap/client.js';
import { BIN, freePort, startProxy } from '../helpers/proxy-process.js';
import { tempDir } from '../helpers/master.js';

const SR = '/opt/sr/trivial/software.cfg';

async function waitReady(url: string): Promise<void> {
  const client = new SlapClient(url, { timeoutMs: 2000 });
  try {
    for (let i = 0; i < 100; i += 1) {
      try {
        await client.getFullComputerInformation('COMP-1');
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error('master did not start');
  } finally {
    await client.close();
  }
}

async function setup(t: ExecutionContext) {
  const dir = tempDir(t);
  const port = await freePort();
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\ncomputer_id = COMP-1\nmaster_url = http://127.0.0.1:${port}\n[slapproxy]\nhost = 127.0.0.1\nport = ${port}\ndatabase_uri = ${path.join(dir, 'db', 'proxy.db')}\n`);
  return { cfg, url: `http://127.0.0.1:${port}/` };
}

const format = { reference: 'COMP-1', partition_list: [{ reference: 'slappart0' }, { reference: 'slappart1' }] };

test('kill -9 after acknowledged writes loses nothing', async (t) => {
  const { cfg, url } = await setup(t);
  const first = startProxy(t, cfg);
  await waitReady(url);
  const client = new SlapClient(url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(format);
  await client.supplySupply(SR, 'COMP-1');
  const inst = await client.requestComputerPartition(SR, 'durable', { parameters: { a: 'b' } });
  await client.setComputerPartitionConnectionXml('COMP-1', inst.partitionId ?? '', { url: 'http://x' });
  first.kill('SIGKILL');
  const result = await first;
  t.is(result.signal, 'SIGKILL');
  startProxy(t, cfg);
  await waitReady(url);
  const again = new SlapClient(url);
  t.teardown(() => again.close());
  const info = await again.getFullComputerInformation('COMP-1');
  t.deepEqual(info.softwareReleases.map((s) => s.url), [SR]);
  const part = info.partitions.find((p) => p.partitionId === inst.partitionId);
  t.is(part?.parameters?.instance_title, 'durable');
  t.is(part?.parameters?.a, 'b');
  t.deepEqual(part?.connectionParameters, { url: 'http://x' });
});

test('SIGTERM stops the master cleanly, and the client CLI talks to it', async (t) => {
  const { cfg, url } = await setup(t);
  const proxy = startProxy(t, cfg);
  await waitReady(url);
  const client = new SlapClient(url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(format);
  const env = { SLAPOS_CLIENT_CONFIGURATION: cfg };
  const supply = await execa('node', [BIN, 'supply', SR, 'COMP-1'], { env, reject: false });
  t.is(supply.exitCode, 0, supply.stderr);
  t.is(supply.stdout, `Supplied '${SR}' to be available`);
  const req = await execa('node', [BIN, 'request', 'cli-inst', SR, '--parameters', 'foo=bar', '--json'], { env, reject: false });
  t.is(req.exitCode, 0, req.stderr);
  const parsed = JSON.parse(req.stdout) as { state: string; partition_id: string };
  t.is(parsed.state, 'started');
  t.is(parsed.partition_id, 'slappart0');
  const list = await execa('node', [BIN, 'list', '--json'], { env, reject: false });
  t.deepEqual(JSON.parse(list.stdout), { 'cli-inst': SR });
  const info = await execa('node', [BIN, '--cfg', cfg, 'info', 'cli-inst', '--json'], { reject: false });
  t.is(info.exitCode, 0, info.stderr);
  t.is((JSON.parse(info.stdout) as { parameters: Record<string, string> }).parameters.foo, 'bar');
  const full = await execa('node', [BIN, 'request', 'x', SR, '--node', 'computer_guid=COMP-1'], { env, reject: false });
  t.is(full.exitCode, 0, full.stderr);
  const none = await execa('node', [BIN, 'request', 'y', SR], { env, reject: false });
  t.is(none.exitCode, 1, 'nothing allocatable is an error');
  proxy.kill('SIGTERM');
  const result = await proxy;
  t.is(result.exitCode, 0, String(result.all));
});

test('without TLS the master refuses a non-loopback address', async (t) => {
  const { cfg } = await setup(t);
  writeFileSync(cfg, `[slapos]\ncomputer_id = COMP-1\n[slapproxy]\nhost = 0.0.0.0\nport = 0\ndatabase_uri = ${path.join(path.dirname(cfg), 'p.db')}\n`);
  const result = await execa('node', [BIN, 'proxy', 'start', '--cfg', cfg], { reject: false, timeout: 20_000 });
  t.is(result.exitCode, 1);
  t.regex(result.stderr, /allow_insecure_bind/);
});
