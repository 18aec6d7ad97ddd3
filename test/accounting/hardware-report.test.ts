// The hardware status on its way to the master: the reduction both ends use
// (src/slap/hardware-report.ts) keeps the known fields and refuses a bad one by
// name; the node sends collect's file (sendHardwareStatus → POST
// reportHardwareStatus), says "none" before the first collect and "failed" for
// a file collect did not write, and skips a master without the route (a
// stand-in for slapos.core's 404) without error.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import Fastify from 'fastify';
import { sendHardwareStatus } from '../../src/accounting/hardware-report.js';
import { hardwareReport } from '../../src/slap/hardware-report.js';
import { SlapClient } from '../../src/slap/client.js';
import { listenOnLoopback, startTestMaster, tempDir } from '../helpers/master.js';
import { computer, hardwareDocument } from '../helpers/semantics-suite.js';
import { log } from './helpers.js';

test('the report keeps what the fleet page shows and refuses a bad field by name', (t) => {
  const report = hardwareReport(hardwareDocument({ temperature: { main_celsius: 41, max_celsius: 80, cores_celsius: [40, 42] } }));
  t.deepEqual(Object.keys(report), ['schema', 'generated_at', 'hostname', 'kernel', 'uptime_seconds', 'cpu', 'memory', 'disks', 'temperature', 'partitions']);
  t.deepEqual(report.cpu, { model: 'Test CPU', cores: 2, load_average: [0.5, 0.25, 0.1] });
  t.deepEqual(report.temperature, { main_celsius: 41, max_celsius: 80 });
  t.deepEqual(report.partitions, { count: 1, active: 0 });
  t.is(hardwareReport(hardwareDocument({ hostname: 'x'.repeat(1000) })).hostname.length, 256, 'texts are capped');
  t.throws(() => hardwareReport([]), { message: /the document must be an object/ });
  t.throws(() => hardwareReport(hardwareDocument({ schema: 'slapos-node/hardware-status/2' })), { message: /schema must be slapos-node\/hardware-status\/1/ });
  t.throws(() => hardwareReport(hardwareDocument({ uptime_seconds: Number.NaN })), { message: /uptime_seconds must be a non-negative number/ });
  t.throws(() => hardwareReport(hardwareDocument({ cpu: { cores: 2, load_average: [1, 2] } })), { message: /cpu\.load_average must be a list of 3 numbers/ });
  t.throws(() => hardwareReport(hardwareDocument({ disks: [{ mount: '/' }] })), { message: /disks\[0\]\.filesystem must be a string/ });
  t.throws(() => hardwareReport(hardwareDocument({ disks: Array.from({ length: 65 }, () => ({})) })), { message: /more than 64/ });
  t.throws(() => hardwareReport(hardwareDocument({ generated_at: 'yesterday' })), { message: /generated_at must be an ISO 8601 time/ });
});

test('the node sends collect\'s file; none before the first collect; a file collect did not write is not sent', async (t) => {
  const master = await startTestMaster(t, 'COMP-1');
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer('COMP-1', 1));
  const dir = tempDir(t);
  const file = path.join(dir, 'hardware-status.json');
  t.is(await sendHardwareStatus(client, 'COMP-1', file, log), 'none');
  writeFileSync(file, '{"schema": "something else"}');
  t.is(await sendHardwareStatus(client, 'COMP-1', file, log), 'failed');
  writeFileSync(file, JSON.stringify(hardwareDocument({ hostname: 'node-1', network: [{ name: 'eth0', rx_bytes: 1 }] })));
  t.is(await sendHardwareStatus(client, 'COMP-1', file, log), 'sent');
  const [row] = await master.store.read((tx) => tx.listHardware());
  const stored = JSON.parse(row?.document ?? '{}') as Record<string, unknown>;
  t.is(stored.hostname, 'node-1');
  t.false('network' in stored, 'interface counters stay on the node');
});

test('a master without the route (a stand-in for slapos.core\'s 404) is skipped without error', async (t) => {
  const app = Fastify();
  t.teardown(() => app.close());
  const port = await listenOnLoopback(app);
  const client = new SlapClient(`http://127.0.0.1:${port}/`);
  t.teardown(() => client.close());
  const file = path.join(tempDir(t), 'hardware-status.json');
  writeFileSync(file, JSON.stringify(hardwareDocument({})));
  t.is(await sendHardwareStatus(client, 'COMP-1', file, log), 'unsupported');
});
