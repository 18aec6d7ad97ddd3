// The usage store's outbox (report files → store → master): killed at each of
// its boundaries (OUTBOX_KILL_POINTS), the next report run delivers every
// journal of an uninterrupted run, deletes every ingested file, and a further
// run (nothing left to do) sends nothing. Exactly once at every boundary: a
// journal the master acknowledged but the killed run did not mark sent
// (outbox:sent) is sent again with its report id, and the master stores it once.
import test from 'ava';
import { execa } from 'execa';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCollect } from '../../src/accounting/collect.js';
import { OUTBOX_KILL_POINTS, runReport } from '../../src/accounting/report.js';
import { storePath, UsageStore } from '../../src/accounting/store.js';
import { parseConsumption, partitionFilesJournal } from '../../src/accounting/tioxml.js';
import { SlapClient } from '../../src/slap/client.js';
import { computer } from '../helpers/semantics-suite.js';
import { startTestMaster } from '../helpers/master.js';
import { isRoot, repoRoot } from '../helpers/system.js';
import { log, makeNode } from './helpers.js';

const rootTest = isRoot ? test.serial : test.skip;
const CONSUMPTION = '<consumption><movement><resource>CPU</resource><title>work</title><reference>x</reference><quantity>7</quantity><price>0</price><VAT></VAT></movement></consumption>';

rootTest('killed at every boundary of the outbox: the next report run delivers everything, a further run sends nothing', async (t) => {
  const master = await startTestMaster(t, 'COMP-1234');
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer('COMP-1234', 1));
  const usage = async () => (await master.store.transaction((tx) => tx.listUsage('COMP-1234'))).map((r) => r.use_string);
  const t0 = 600 * 3600;
  const later = t0 + 3600 + 300;
  const computerJournal = partitionFilesJournal('COMP-1234', t0, new Map([['slappart0', parseConsumption(CONSUMPTION)]]));

  /** A node with one partition report file, one computer journal and one finished sample period. */
  const prepare = async () => {
    const node = makeNode(t, [{ id: 'slappart0' }]);
    const reports = path.join(node.partitionPath('slappart0'), 'var', 'xml_report');
    mkdirSync(reports, { recursive: true });
    writeFileSync(path.join(reports, 'r1'), CONSUMPTION);
    const computerDir = path.join(node.instanceRoot, 'var', 'xml_report', 'COMP-1234');
    mkdirSync(computerDir, { recursive: true });
    writeFileSync(path.join(computerDir, 'j1'), computerJournal);
    await runCollect({ settings: node.settings, log, now: () => t0 + 10 });
    await runCollect({ settings: node.settings, log, now: () => t0 + 70 });
    return { node, leftFiles: () => [...readdirSync(reports), ...readdirSync(computerDir)] };
  };
  const report = path.join(repoRoot, 'dist', 'src', 'accounting', 'report.js');
  const slap = path.join(repoRoot, 'dist', 'src', 'slap', 'client.js');
  const killedRun = (settings: unknown, point: string) => execa(process.execPath, ['--input-type=module', '-e', `
    const { runReport } = await import(${JSON.stringify(report)});
    const { SlapClient } = await import(${JSON.stringify(slap)});
    const { pino } = await import('pino');
    await runReport({ settings: ${JSON.stringify(settings)}, client: new SlapClient(${JSON.stringify(master.url)}), log: pino({ level: 'silent' }), now: () => ${later} });
  `], { reject: false, cwd: repoRoot, env: { SLAPOS_TEST_KILL_AT: point } });

  // Uninterrupted: three journals (the partition file, the computer journal, the period).
  const reference = await prepare();
  const first = await runReport({ settings: reference.node.settings, client, log, now: () => later });
  t.is(first.summary.sent, 3, JSON.stringify(first.summary));
  const expected = (await usage()).sort();
  t.deepEqual(reference.leftFiles(), []);

  for (const point of OUTBOX_KILL_POINTS) {
    const { node, leftFiles } = await prepare();
    const before = (await usage()).length;
    const child = await killedRun(node.settings, point);
    t.is(child.signal, 'SIGKILL', `${point}: ${child.stderr}`);
    const next = await runReport({ settings: node.settings, client, log, now: () => later });
    t.is(next.exitCode, 0, `${point}: ${JSON.stringify(next.summary)}`);
    const arrived = (await usage()).slice(before).sort();
    // Every journal of the uninterrupted run arrived (same documents: they are made from the same data and clock).
    t.deepEqual([...new Set(arrived)].sort(), [...new Set(expected)].sort(), `${point}: every journal delivered`);
    t.is(arrived.length, expected.length, `${point}: stored exactly once`);
    t.deepEqual(leftFiles(), [], `${point}: every ingested file deleted`);
    const store = new UsageStore(storePath(node.instanceRoot));
    t.is(store.outboxCounts().pending, 0, point);
    store.close();
    const again = await runReport({ settings: node.settings, client, log, now: () => later });
    t.is(again.summary.sent, 0, `${point}: a further run sends nothing`);
  }
});
