// Opening a database written by the reference's slapproxy (schema v17): the rows are
// carried over, the master answers what the reference answered from that file, the
// original is backed up, and a kill -9 at any step leaves the old or the new database.
import test from 'ava';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from 'undici';
import { migrate, SCHEMA_VERSION } from '../../src/master/migrations.js';
import { buildMaster } from '../../src/master/server.js';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { importLockFile, importTempFile, SLAPPROXY_IMPORT_KILL_POINTS, SlapproxyImportError } from '../../src/master/slapproxy-import.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { tempDir } from '../helpers/master.js';
import { fixturesDir, repoRoot } from '../helpers/paths.js';
import { freePort, startProxy, waitListening } from '../helpers/proxy-process.js';

const FIXTURE = path.join(fixturesDir, 'slapproxy-db', 'proxy-v17.db');
interface Expected {
  getFullComputerInformation: Record<string, { status: number; body: string }>;
}
const expected = JSON.parse(readFileSync(path.join(fixturesDir, 'slapproxy-db', 'expected.json'), 'utf8')) as Expected;

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const ORIGINAL_SHA = sha(FIXTURE);

/** A copy of the fixture database in a fresh temp dir. */
function copyFixture(t: Parameters<typeof tempDir>[0]): string {
  const file = path.join(tempDir(t), 'proxy.db');
  copyFileSync(FIXTURE, file);
  return file;
}

/** Every answer of expected.json, asked from a master on the (converted) store. */
/**
 * GET over a real loopback connection: without TLS the master knows its
 * caller by the socket's owner uid (docs/master.md), which an injected
 * request (no socket) does not have; the test runs as root, the operator.
 */
async function loopbackGetter(t: Parameters<typeof tempDir>[0], app: Awaited<ReturnType<typeof buildMaster>>) {
  await app.listen({ host: '127.0.0.1', port: 0 });
  t.teardown(() => app.close());
  const { port } = app.server.address() as AddressInfo;
  return (url: string, headers: Record<string, string> = {}) => new Promise<{ statusCode: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: url, method: 'GET', headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function assertReferenceAnswers(t: Parameters<typeof tempDir>[0], store: SqliteStore): Promise<void> {
  const get = await loopbackGetter(t, await buildMaster({ store, defaultComputer: 'COMP-DB1' }));
  for (const [computer, answer] of Object.entries(expected.getFullComputerInformation)) {
    const res = await get(`/getFullComputerInformation?computer_id=${computer}`);
    t.is(res.statusCode, answer.status, computer);
    // The reference says text/html for marshalled XML; we say text/xml (docs/master.md): clients ignore it.
    t.is(res.headers['content-type'], 'text/xml; charset=utf-8', computer);
    t.is(res.body, answer.body, `getFullComputerInformation ${computer} as the reference answered from this file`);
  }
}

function counts(file: string): Record<string, number> {
  const db = new Database(file, { readonly: true });
  try {
    const n = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    return {
      version: Number(db.pragma('user_version', { simple: true })),
      computer: n('computer'), software: n('software'), computer_partition: n('computer_partition'),
      shared_instance: n('shared_instance'), partition_network: n('partition_network'),
      legacy: (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name LIKE '%17'").get() as { n: number }).n,
    };
  } finally {
    db.close();
  }
}
const MIGRATED = {
  version: SCHEMA_VERSION, computer: 2, software: 3, computer_partition: 5, shared_instance: 1, partition_network: 10, legacy: 0,
};

test('a reference v17 database is converted with every row, backed up, and answers as the reference did', async (t) => {
  const file = copyFixture(t);
  const store = new SqliteStore(file);
  const report = store.imported;
  t.truthy(report);
  t.is(report?.fromVersion, 17);
  t.deepEqual(report?.carried, { computer17: 2, software17: 3, partition17: 5, slave17: 1, partition_network17: 10 });
  t.deepEqual(report?.notCarried, {});
  t.is(sha(report?.backup ?? ''), ORIGINAL_SHA, 'the backup is the original, byte for byte');
  t.false(existsSync(importTempFile(file)));
  await assertReferenceAnswers(t, store);
  // Instances, shared instance and connection parameters are all there.
  const rows = await store.read(async (tx) => ({
    busy: (await tx.listBusyPartitions()).map((p) => [p.computer_reference, p.reference, p.partition_reference, p.requested_state]),
    slave: await tx.getSlave('COMP-DB1', '_sharedA'),
    software: (await tx.listSoftware('COMP-DB2')).map((s) => [s.url, s.requested_state]),
    instB: await tx.getPartition('COMP-DB1', 'slappart1'),
  }));
  t.deepEqual(rows.busy, [
    ['COMP-DB1', 'slappart0', 'instA', 'started'], ['COMP-DB1', 'slappart1', 'instB', 'stopped'], ['COMP-DB2', 'slappart0', 'instC', 'started'],
  ]);
  t.is(rows.slave?.hosted_by, 'slappart0');
  t.regex(rows.slave?.connection_xml ?? '', /<parameter id="hello">shared<\/parameter>/);
  t.deepEqual(rows.software, [['/opt/sr/trivial/software.cfg', 'available'], ['/opt/sr/other/software.cfg', 'destroyed']]);
  t.is(rows.instB?.software_type, 'other');
  t.regex(rows.instB?.connection_xml ?? '', /<parameter id="param-foo">b<\/parameter>/);
  await store.close();
  t.deepEqual(counts(file), MIGRATED);
  // A second open finds our own database: nothing more to import, no second backup.
  const again = new SqliteStore(file);
  t.is(again.imported, undefined);
  await again.close();
  t.is(readdirSync(path.dirname(file)).filter((n) => n.includes('-backup-')).length, 1);
});

test('a slapproxy database newer (or older) than version 17 is refused with a clear error, unchanged', (t) => {
  for (const [version, pattern] of [[18, /schema version 18 is newer than this program understands \(17\)/], [16, /only version 17/]] as const) {
    const file = path.join(tempDir(t), 'proxy.db');
    const db = new Database(file);
    db.exec(`CREATE TABLE computer${version} (reference TEXT PRIMARY KEY, address TEXT, netmask TEXT);
      INSERT INTO computer${version} VALUES ('COMP-X', NULL, NULL);`);
    db.close();
    const before = sha(file);
    const error = t.throws(() => new SqliteStore(file), { instanceOf: SlapproxyImportError });
    t.regex(error?.message ?? '', pattern);
    t.is(sha(file), before, 'the file is unchanged');
    t.deepEqual(readdirSync(path.dirname(file)), ['proxy.db'], 'no backup, no temporary file left');
  }
});

test('a reference database our previous version already opened (empty tables of ours beside) is converted; with data of ours it is refused', async (t) => {
  const file = copyFixture(t);
  // What the master did before this importer: its own empty tables beside the reference's.
  const db = new Database(file);
  migrate(db);
  db.close();
  const store = new SqliteStore(file);
  t.is(store.imported?.fromVersion, 17);
  await assertReferenceAnswers(t, store);
  await store.close();
  t.deepEqual(counts(file), MIGRATED);

  const mixed = copyFixture(t);
  const withRows = new Database(mixed);
  migrate(withRows);
  withRows.exec("INSERT INTO computer (reference) VALUES ('COMP-OURS')");
  withRows.close();
  const before = sha(mixed);
  const error = t.throws(() => new SqliteStore(mixed), { instanceOf: SlapproxyImportError });
  t.regex(error?.message ?? '', /both slapproxy tables \(version 17\) and data of ours/);
  t.is(sha(mixed), before);
});

test('a database of ours with a newer schema version is refused, unchanged', (t) => {
  const file = path.join(tempDir(t), 'proxy.db');
  const db = new Database(file);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  const before = sha(file);
  t.throws(() => new SqliteStore(file), { message: new RegExp(`schema version ${SCHEMA_VERSION + 1} is newer than this program`) });
  t.is(sha(file), before);
});

test('a conversion in progress in another process is not disturbed: a second opener is refused, nothing changed', (t) => {
  const file = copyFixture(t);
  // A live process holds the lock (this test's parent: certainly alive, and not us).
  writeFileSync(importLockFile(file), `${process.ppid}\n`);
  writeFileSync(importTempFile(file), 'being built');
  const error = t.throws(() => new SqliteStore(file), { instanceOf: SlapproxyImportError });
  t.regex(error?.message ?? '', new RegExp(`process ${process.ppid} is converting this slapproxy database`));
  t.is(sha(file), ORIGINAL_SHA);
  t.is(readFileSync(importTempFile(file), 'utf8'), 'being built', 'its temporary file is left alone');
});

test('kill -9 at each step of the conversion leaves the old or the new database, and the next start completes it', async (t) => {
  const storeModule = path.join(repoRoot, 'dist', 'src', 'master', 'sqlite-store.js');
  const script = `const { SqliteStore } = await import(${JSON.stringify(storeModule)}); new SqliteStore(process.argv[1]);`;
  for (const step of SLAPPROXY_IMPORT_KILL_POINTS) {
    const file = copyFixture(t);
    const run = await execa('node', ['--input-type=module', '-e', script, file], {
      reject: false, env: { SLAPOS_TEST_KILL_AT: step },
    });
    t.is(run.signal, 'SIGKILL', `${step}: the hook killed the process (${run.stderr})`);
    if (step === 'slapproxy-import:after-rename') {
      t.deepEqual(counts(file), MIGRATED, `${step}: the new database, complete`);
    } else {
      t.is(sha(file), ORIGINAL_SHA, `${step}: the original, untouched`);
    }
    t.true(existsSync(importLockFile(file)), `${step}: the killed conversion left its lock`);
    const store = new SqliteStore(file);
    t.false(existsSync(importTempFile(file)), `${step}: the stale temporary file is gone`);
    t.false(existsSync(importLockFile(file)), `${step}: the stale lock is gone`);
    await assertReferenceAnswers(t, store);
    await store.close();
    t.deepEqual(counts(file), MIGRATED, `${step}: converted on the next start`);
  }
});

test('slapos proxy start on a reference database says what it converted', async (t) => {
  const file = copyFixture(t);
  const dir = path.dirname(file);
  const port = await freePort();
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\ncomputer_id = COMP-DB1\nmaster_url = http://127.0.0.1:${port}\n[slapproxy]\nhost = 127.0.0.1\nport = ${port}\ndatabase_uri = ${file}\n`);
  const child = startProxy(t, cfg);
  const url = `http://127.0.0.1:${port}/`;
  await waitListening(child, url);
  const res = await request(`${url}getFullComputerInformation?computer_id=COMP-DB2`);
  t.is(await res.body.text(), expected.getFullComputerInformation['COMP-DB2']?.body ?? 'missing');
  child.kill('SIGTERM');
  const result = await child;
  t.regex(String(result.all), /imported slapproxy database .*proxy\.db \(schema version 17\): computer17: 2, software17: 3, partition17: 5, slave17: 1, partition_network17: 10; original saved as .*-backup-slapproxy-v17-.*\.db \(the reference's `slapos proxy show` and `slapos proxy start` cannot read the converted file/);
});

// `slapos service list` on the converted file, through /hateoas.
interface RecordedExchange { request: string; request_headers: [string, string][]; status: number; location: string | null; body: string }
const serviceList = (JSON.parse(readFileSync(path.join(fixturesDir, 'slapproxy-db', 'expected.json'), 'utf8')) as {
  'slapos service list': { exchanges: RecordedExchange[] };
})['slapos service list'].exchanges;
test(`slapos service list on the converted database: the reference's HATEOAS exchanges`, async (t) => {
  const store = new SqliteStore(copyFixture(t));
  const get = await loopbackGetter(t, await buildMaster({ store, defaultComputer: 'COMP-DB1' }));
  for (const exchange of serviceList) {
    const url = exchange.request.replace(/^GET /, '');
    const res = await get(url, { host: '127.0.0.1:5190' });
    t.is(res.statusCode, exchange.status, url);
    if (exchange.location) t.is(res.headers.location, exchange.location, url);
    if (exchange.status === 200) t.deepEqual(JSON.parse(res.body), JSON.parse(exchange.body), url);
  }
});
