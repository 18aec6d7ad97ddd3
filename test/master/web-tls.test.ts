// The web view and its JSON API under TLS client certificates, as a real
// master authenticates: a user's certificate sees everything (secrets when
// asked), a computer's its computer, a partition's its own partition only, a
// caller without a certificate (or with one from another CA) nothing at all.
import test, { type ExecutionContext } from 'ava';
import path from 'node:path';
import { Agent, request } from 'undici';
import { createCa, issueCertificate, type CaFiles } from '../../src/master/certificates.js';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { SlapClient } from '../../src/slap/client.js';
import { listenOnLoopback, tempDir } from '../helpers/master.js';
import { fillSmallFleet } from '../helpers/web-fleet.js';
import { readFileSync } from 'node:fs';

interface Fleet { computers: Array<{ computer: string; partitions: Array<{ partition: string }>; software: unknown[]; hardware: { hostname: string } | null }> }
interface Instances { secrets: boolean; instances: Array<{ title: string; parameters: Record<string, string>; connection_parameters: Record<string, string> }> }
interface Usage { series: Array<{ values: number[] }> }

async function setup(t: ExecutionContext) {
  const dir = tempDir(t);
  const ca: CaFiles = { certFile: path.join(dir, 'ca.crt'), keyFile: path.join(dir, 'ca.key') };
  await createCa(ca.certFile, ca.keyFile);
  const server = await issueCertificate(ca, 'server', 'localhost', ['localhost']);
  const caPem = readFileSync(ca.certFile);
  const app = await buildMaster({
    store: new SqliteStore(path.join(dir, 'proxy.db')), defaultComputer: 'COMP-1',
    https: { key: Buffer.from(server.key), cert: Buffer.from(server.certificate), ca: caPem }, issuingCa: ca,
  });
  t.teardown(() => app.close());
  const url = `https://localhost:${await listenOnLoopback(app)}/`;
  const slap = (cert?: { key: string; certificate: string }) => {
    const c = new SlapClient(url, { tls: { ca: caPem, ...(cert ? { key: cert.key, cert: cert.certificate } : {}) }, timeoutMs: 10_000 });
    t.teardown(() => c.close());
    return c;
  };
  /** GET over TLS with that certificate (none: anonymous); status and body. */
  const get = (cert: { key: string; certificate: string } | undefined) => {
    const dispatcher = new Agent({ connect: { ca: caPem, ...(cert ? { key: cert.key, cert: cert.certificate } : {}) } });
    t.teardown(() => dispatcher.close());
    return async (route: string) => {
      const res = await request(`${url}${route}`, { dispatcher });
      return { status: res.statusCode, body: await res.body.text() };
    };
  };
  const user = await issueCertificate(ca, 'user', 'admin');
  const computers = { 'COMP-1': await issueCertificate(ca, 'computer', 'COMP-1'), 'COMP-2': await issueCertificate(ca, 'computer', 'COMP-2') };
  const comp = new Map(Object.entries(computers).map(([id, cert]) => [id, slap(cert)]));
  await fillSmallFleet({ user: slap(user), computer: (id) => comp.get(id) as SlapClient });
  // b's partition certificate, as its node fetches it for the instance.
  const issued = await comp.get('COMP-1')!.getComputerPartitionCertificate('COMP-1', 'slappart1');
  return { ca, dir, get, user, computers, partition: issued };
}

test('a user certificate sees the whole fleet, and secrets when it asks', async (t) => {
  const { get, user } = await setup(t);
  const as = get(user);
  t.is((await as('')).status, 200);
  const fleet = JSON.parse((await as('api/fleet')).body) as Fleet;
  t.deepEqual(fleet.computers.map((c) => [c.computer, c.partitions.length, c.software.length, c.hardware?.hostname ?? null]), [['COMP-1', 3, 1, 'node-1'], ['COMP-2', 1, 0, null]]);
  const masked = JSON.parse((await as('api/instances')).body) as Instances;
  t.deepEqual(masked.instances.find((i) => i.title === 'a')?.parameters, { 'db-password': '••••••', name: 'shop' }, 'secret-looking values masked unless asked');
  const shown = JSON.parse((await as('api/instances?secrets=1')).body) as Instances;
  t.true(shown.secrets);
  t.deepEqual(shown.instances.find((i) => i.title === 'a')?.parameters, { 'db-password': 'hunter2', name: 'shop' });
  t.is(shown.instances.find((i) => i.title === 'a')?.connection_parameters.url, 'https://user:pw@[fd00::1]/');
  t.deepEqual((JSON.parse((await as('api/usage?scope=fleet&resource=memory&range=hour')).body) as Usage).series[0]?.values, [150]);
});

test('a computer certificate sees its computer; a partition certificate its own partition only', async (t) => {
  const { get, computers, partition } = await setup(t);
  const comp2 = JSON.parse((await get(computers['COMP-2'])('api/fleet')).body) as Fleet;
  t.deepEqual(comp2.computers.map((c) => c.computer), ['COMP-2']);
  const as = get(partition);
  t.is((await as('')).status, 200, 'the page itself');
  const fleet = JSON.parse((await as('api/fleet')).body) as Fleet;
  t.deepEqual(fleet.computers.map((c) => [c.computer, c.partitions.map((p) => p.partition), c.software.length, c.hardware]), [['COMP-1', ['slappart1'], 0, null]]);
  const instances = JSON.parse((await as('api/instances?secrets=1')).body) as Instances;
  t.deepEqual(instances.instances.map((i) => [i.title, i.parameters]), [['b', { name: 'blog' }]], 'its own instance, not a\'s secret');
  t.deepEqual((JSON.parse((await as('api/usage?scope=fleet&resource=memory&range=hour')).body) as Usage).series[0]?.values, [50], 'the fleet, as it sees it, is itself');
  t.deepEqual((JSON.parse((await as('api/usage?scope=partition:COMP-1/slappart0&resource=memory&range=hour')).body) as Usage).series[0]?.values, [], 'not another partition\'s usage');
  t.deepEqual((JSON.parse((await as('api/usage?scope=computer:COMP-2&resource=memory&range=hour')).body) as Usage).series[0]?.values, []);
});

test('without a certificate, or with one from another CA, the view and its API answer 403 and nothing else', async (t) => {
  const { get, dir } = await setup(t);
  const foreign: CaFiles = { certFile: path.join(dir, 'f.crt'), keyFile: path.join(dir, 'f.key') };
  await createCa(foreign.certFile, foreign.keyFile, 'rogue');
  const forged = await issueCertificate(foreign, 'user', 'admin');
  for (const [who, as] of [['anonymous', get(undefined)], ['a certificate from another CA', get(forged)]] as const) {
    for (const route of ['', 'api/fleet', 'api/instances?secrets=1', 'api/usage?scope=fleet', 'status']) {
      const answer = await as(route);
      t.is(answer.status, 403, `${who}: /${route}`);
      t.notRegex(answer.body, /COMP-1|hunter2|shop|node-1/, `${who}: /${route} says nothing of the fleet`);
    }
  }
});
