// The master logs one JSON line per request: method, route pattern, status,
// duration, computer and partition; never the parameters (docs/design.md, "Logs").
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { tempDir } from '../helpers/master.js';
import { freePort, startProxy, waitListening } from '../helpers/proxy-process.js';

test('one line per request with its fields, none with the parameters', async (t) => {
  const records: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  }));
  const store = new SqliteStore(path.join(tempDir(t), 'proxy.db'));
  const app = await buildMaster({ store, defaultComputer: 'COMP-A', logger });
  t.teardown(() => app.close());

  const info = await app.inject({ method: 'GET', url: '/getFullComputerInformation?computer_id=COMP-A' });
  const secret = 'parameter-value-never-logged';
  const bang = await app.inject({
    method: 'POST', url: '/softwareInstanceBang', headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `computer_id=COMP-A&computer_partition_id=slappart9&message=${secret}`,
  });
  const requests = records.filter((r) => r.msg === 'request');
  t.is(requests.length, 2, JSON.stringify(records));
  t.like(requests[0], { method: 'GET', route: '/getFullComputerInformation', status: info.statusCode, computer: 'COMP-A' });
  t.like(requests[1], { method: 'POST', route: '/softwareInstanceBang', status: bang.statusCode, computer: 'COMP-A', partition: 'slappart9' });
  for (const r of requests) t.is(typeof r.duration_ms, 'number');
  t.false(JSON.stringify(records).includes(secret));
  t.false(records.some((r) => r.msg === 'incoming request' || r.msg === 'request completed'), "fastify's own two lines are off");
});

test('`proxy start --log-file`: each request line names its own computer, once', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const cfg = path.join(dir, 'slapos.cfg');
  const logFile = path.join(dir, 'master.jsonl');
  // [slapos] computer_id is the master's default computer, not the computer of every request.
  writeFileSync(cfg, `[slapos]\ncomputer_id = COMP-HOST\nmaster_url = http://127.0.0.1:${port}\n` +
    `[slapproxy]\nhost = 127.0.0.1\nport = ${port}\ndatabase_uri = ${path.join(dir, 'proxy.db')}\n`);
  const child = startProxy(t, cfg, ['--log-file', logFile]);
  const url = `http://127.0.0.1:${port}/`;
  await waitListening(child, url);
  for (const computer of ['COMP-A', 'COMP-B']) {
    const res = await request(`${url}getFullComputerInformation?computer_id=${computer}`);
    await res.body.dump();
  }
  child.kill('SIGTERM');
  await child;
  const raw = readFileSync(logFile, 'utf8').trim().split('\n');
  const lines = raw.filter((line) => line.includes('"msg":"request"') && line.includes('getFullComputerInformation'));
  t.is(lines.length, 2, raw.join('\n'));
  // JSON.parse keeps the last of two equal keys: count them in the text.
  for (const line of lines) t.is(line.split('"computer":').length - 1, 1, line);
  // docs/operations.md's filter: jq 'select(.computer == "COMP-B")'.
  const byComputer = lines.map((line) => JSON.parse(line) as { computer: string }).filter((r) => r.computer === 'COMP-B');
  t.is(byComputer.length, 1);
  t.true(raw.some((line) => line.includes('"msg":"master listening"') && line.includes('"computer_id":"COMP-HOST"')));
});
