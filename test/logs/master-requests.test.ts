// The master logs one JSON line per request: method, route pattern, status,
// duration, computer and partition; never the parameters (docs/design.md, "Logs").
import test from 'ava';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { tempDir } from '../helpers/master.js';

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
