// The PostgreSQL engine: the whole semantics suite on it, and two master
// processes on one database (what a load balancer in front of several masters
// does) never allocating a partition twice. Each test gets its own database
// in one throw-away cluster (unix socket only).
import test from 'ava';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { PgStore } from '../../src/master/pg-store.js';
import { SlapClient } from '../../src/slap/client.js';
import { SlapNotFoundError } from '../../src/slap/errors.js';
import { tempDir } from '../helpers/master.js';
import { defineAttacks } from '../helpers/attack-suite.js';
import { postgresMissing, startPostgres, type TestPostgres } from '../helpers/postgres.js';
import { seriesWrites } from '../../src/master/usage-series.js';
import { freePort, startProxy, waitListening } from '../helpers/proxy-process.js';
import { computer, defineSemantics } from '../helpers/semantics-suite.js';

const SR = '/opt/sr/trivial/software.cfg';
const missing = postgresMissing();
let server: TestPostgres | undefined;
let databases = 0;
const newDatabase = () => {
  if (!server) throw new Error('the PostgreSQL test cluster did not start');
  databases += 1;
  return server.createDatabase(`t${process.pid}_${databases}`);
};

if (missing) {
  test.skip(`PostgreSQL tests skipped: ${missing}`, () => undefined);
} else {
  test.before(async () => {
    server = await startPostgres();
  });
  test.after.always(async () => {
    await server?.stop();
  });

  defineSemantics('pg: ', async () => PgStore.open(await newDatabase()));
  defineAttacks('pg attacks: ', async () => PgStore.open(await newDatabase()));

  test('pg: two master processes on one database allocate every partition at most once', async (t) => {
    const uri = await newDatabase();
    const dir = tempDir(t);
    const urls: string[] = [];
    const children: ReturnType<typeof startProxy>[] = [];
    for (const name of ['a', 'b']) {
      const port = await freePort();
      const cfg = path.join(dir, `${name}.cfg`);
      writeFileSync(cfg, `[slapos]\ncomputer_id = COMP-1234\n[slapproxy]\nhost = 127.0.0.1\nport = ${port}\ndatabase_uri = ${uri}\n`);
      children.push(startProxy(t, cfg));
      urls.push(`http://127.0.0.1:${port}/`);
    }
    await Promise.all(urls.map((u, i) => waitListening(children[i]!, `${u}metrics`)));
    const clients = urls.map((u) => new SlapClient(u));
    t.teardown(() => Promise.all(clients.map((c) => c.close())));
    await clients[0]!.loadComputerConfigurationFromXML(computer('COMP-1234', 40));

    // 50 distinct titles for 40 partitions, alternating between the two masters.
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => clients[i % 2]!.requestComputerPartition(SR, `inst${i}`)),
    );
    const ok = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.partitionId] : []));
    const refused = results.filter((r) => r.status === 'rejected' && r.reason instanceof SlapNotFoundError);
    t.is(ok.length, 40);
    t.is(refused.length, 10);
    t.is(new Set(ok).size, 40, 'no partition handed out twice');

    // The same title asked 50 times through both masters: one instance.
    await clients[0]!.loadComputerConfigurationFromXML(computer('COMP-1234', 41));
    const same = await Promise.all(Array.from({ length: 50 }, (_, i) => clients[i % 2]!.requestComputerPartition(SR, 'same')));
    t.is(new Set(same.map((r) => r.partitionId)).size, 1);

    // Both masters see the same fleet.
    const info = await clients[1]!.getFullComputerInformation('COMP-1234');
    const titles = info.partitions.flatMap((p) => (p.parameters ? [p.parameters.instance_title] : []));
    t.is(titles.length, 41);
    t.is(new Set(titles).size, 41);
    const metrics = await (await request(`${urls[1]}metrics`)).body.text();
    t.regex(metrics, /^slapos_master_partitions\{slap_state="busy",requested_state="started"\} 41$/m);
  });

  test('pg: usage series (issue 27): journals add to the hourly bucket, raw is replaced, old buckets pruned, ranges read', async (t) => {
    const store = await PgStore.open(await newDatabase());
    t.teardown(() => store.close());
    const now = Math.floor(Date.now() / 1000 / 3600) * 3600;
    const point = (at: number, quantity: number) => ({ partition: 'slappart0', resource: 'service_module/memory_used' as const, at, quantity });
    await store.transaction((tx) => tx.addSeries('COMP-1', seriesWrites([point(now - 3000, 100), point(now - 2940, 300), point(now - 400 * 86400, 7)], now)));
    await store.transaction((tx) => tx.addSeries('COMP-1', seriesWrites([point(now - 3000, 120)], now)));
    const read = (resolution: number) => store.read((tx) => tx.listSeries('service_module/memory_used', resolution, 0, now + 1, 'COMP-1'));
    t.deepEqual((await read(0)).map((r) => [r.bucket, r.total, r.samples]), [[now - 3000, 120, 1], [now - 2940, 300, 1]]);
    t.deepEqual((await read(3600)).map((r) => [r.bucket, r.total, r.samples, r.maximum]), [[now - 3600, 520, 3, 300]]);
    t.is((await read(86400)).length, 2, 'the 400-day-old point is still kept daily');
    t.is(await store.transaction((tx) => tx.pruneSeries(86400, now - 300 * 86400)), 1);
  });
}
