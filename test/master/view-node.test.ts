// The web view fed by a real node: a formatted node in a namespace builds the
// example release (examples/hello-http), deploys an instance (real buildout,
// supervisord, the release's promise), then `slapos node collect` and
// `slapos node report` send its hardware status and promise results to our
// master; headless Chromium then shows that computer, its partitions, the
// release's state, the hardware status and the instance's promise results,
// and the usage page the partition's period. Usage goes out only once a report
// period has ended (5 minutes and a grace of 2): that one report is the node's
// own runReport with its clock moved past the period's end, not a wait.
// Screenshots go to test-artifacts/web-view-node/ (or $SLAPOS_TEST_ARTIFACTS), never committed.
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { accountingSettings } from '../../src/accounting/settings.js';
import { PERIOD_GRACE_SECONDS, runReport } from '../../src/accounting/report.js';
import { loadConfig } from '../../src/config/load.js';
import { SlapClient } from '../../src/slap/client.js';
import { log } from '../accounting/helpers.js';
import { CHROMIUM, startChromium, type Page } from '../helpers/chromium.js';
import { isRoot, repoRoot } from '../helpers/system.js';
import { cli, instancePass, nodeEnv } from '../instance/env.js';

const EXAMPLE = path.join(repoRoot, 'examples', 'hello-http', 'software.cfg');
const artifacts = path.join(process.env.SLAPOS_TEST_ARTIFACTS ?? path.join(repoRoot, 'test-artifacts'), 'web-view-node');
const skipped = !isRoot ? 'needs root' : !CHROMIUM ? 'chromium not installed, apt-get install chromium' : '';

(skipped ? test.skip : test.serial)(`web view fed by a namespace node running the example release: computer, partitions, release, hardware, promises${skipped ? ` (skipped: ${skipped})` : ''}`, async (t) => {
  t.timeout(240_000);
  const env = await nodeEnv(t, 2);
  const { client, computerId, cfg, master } = env;
  await client.supplySupply(EXAMPLE, computerId);
  const software = await cli(cfg, ['node', 'software', '--now']);
  t.is(software.status, 0, software.stderr.slice(-3000));
  const requested = await client.requestComputerPartition(EXAMPLE, 'hello', { parameters: { greeting: 'web view' } }).catch(() => undefined);
  const partition = requested?.partitionId as string;
  t.truthy(partition);
  const pass = await instancePass(cfg);
  t.is(pass.status, 0, pass.stderr.slice(-3000));
  t.deepEqual(pass.summary?.processed, [partition]);
  const collected = await cli(cfg, ['node', 'collect', '--json']);
  t.is(collected.status, 0, collected.stderr.slice(-3000));
  const reported = await cli(cfg, ['node', 'report', '--now', '--json']);
  t.is(reported.status, 0, reported.stderr.slice(-3000));
  t.like(JSON.parse(reported.stdout), { promisesSent: 1, hardware: 'sent' });
  // A second sample, then the period as the node reports it once it has ended.
  t.is((await cli(cfg, ['node', 'collect'])).status, 0);
  const settings = accountingSettings(loadConfig(cfg));
  const later = () => Date.now() / 1000 + settings.collect.report_period + PERIOD_GRACE_SECONDS + 1;
  const reporter = new SlapClient(master.url);
  t.teardown(() => reporter.close());
  const period = await runReport({ settings, client: reporter, log, now: later });
  t.true(period.summary.sent >= 1, JSON.stringify(period.summary));

  // What the JSON API holds, as the node reported it.
  const fleet = await (await fetch(`${master.url}api/fleet`)).json() as { computers: Array<{
    computer: string; hardware: { hostname: string; cpu: { cores: number }; memory: { total_bytes: number }; disks: unknown[]; partitions: { count: number } } | null;
    partitions: Array<{ partition: string; title: string | null; reported_state: string | null; health: string; promises: Array<{ name: string; status: string }> }>;
    software: Array<{ url: string; reported_state: string | null }>;
  }> };
  const computer = fleet.computers.find((c) => c.computer === computerId);
  t.like(computer?.hardware, { hostname: os.hostname(), cpu: { cores: os.cpus().length }, memory: { total_bytes: os.totalmem() }, partitions: { count: 2 } });
  t.true((computer?.hardware?.disks.length ?? 0) > 0, 'the node\'s disks');
  t.deepEqual(computer?.software.map((s) => [s.url, s.reported_state]), [[EXAMPLE, 'available']]);
  const deployed = computer?.partitions.find((p) => p.partition === partition);
  t.like(deployed, { title: 'hello', reported_state: 'started', health: 'ok' });
  t.deepEqual(deployed?.promises.map((p) => [p.name, p.status]), [['hello-http-listening', 'ok']]);

  // The pages, in headless Chromium.
  mkdirSync(artifacts, { recursive: true });
  const browser = await startChromium(t);
  const shot = async (page: Page, name: string) => writeFileSync(path.join(artifacts, `${name}.png`), await page.screenshot());
  const text = (page: Page) => page.evaluate<string>('document.getElementById("main").innerText');
  const ready = (page: Page, view: string) => page.waitFor(`document.getElementById('main')?.dataset.ready === '${view}'`);
  const page = await browser.open(`${master.url}?view=fleet`, { width: 1360, height: 900 });
  await ready(page, 'fleet');
  const fleetText = await text(page);
  t.regex(fleetText, /1 computer\(s\), 1 busy and 1 free partition\(s\)/);
  t.regex(fleetText, new RegExp(`Computer ${computerId}`));
  t.regex(fleetText, new RegExp(`${partition}\\s+hello\\s+started\\s+▶ started`), 'the partition, its instance, requested and reported state');
  t.regex(fleetText, /1\/1 pass/);
  t.true(fleetText.includes(EXAMPLE), 'the release by its URL');
  t.regex(fleetText, /✔ available/, 'the release\'s state, in words');
  t.true(fleetText.includes(`Host ${os.hostname()}`), 'the hardware status');
  t.regex(fleetText, new RegExp(`CPU\\s+${os.cpus().length} core\\(s\\)`));
  t.regex(fleetText, /Memory\s+[\d.]+ [KMGT]iB used of [\d.]+ [KMGT]iB/);
  t.regex(fleetText, /Partitions\s+\d of 2 running processes/);
  t.true(await page.evaluate<number>('document.querySelectorAll("table.disks tbody tr").length') > 0, 'one row per disk');
  await shot(page, 'fleet');

  await page.goto(`${master.url}?view=instances`);
  await ready(page, 'instances');
  const instances = await text(page);
  t.regex(instances, /hello-http-listening/, 'the instance\'s promise, by name');
  t.regex(instances, /greeting/);
  t.notRegex(instances, /failing since/);
  await shot(page, 'instances');

  await page.goto(`${master.url}?view=usage&scope=partition:${computerId}/${partition}&range=day`);
  await ready(page, 'usage');
  t.is(await page.evaluate<number>('document.querySelectorAll(".plot canvas").length'), 5);
  t.deepEqual(await page.evaluate<string[]>('[...document.querySelectorAll(".usage table.numbers tbody tr td:first-child")].map((e) => e.textContent)').then((cells) => cells.slice(0, 1).length), 1, 'the partition\'s row beside the plot');
  const memory = await (await fetch(`${master.url}api/usage?scope=partition:${computerId}/${partition}&resource=memory&range=day`)).json() as { series: Array<{ values: number[] }> };
  t.true((memory.series[0]?.values.length ?? 0) >= 1 && (memory.series[0]?.values[0] ?? 0) > 0, `the instance's memory, as collect measured it: ${JSON.stringify(memory.series[0]?.values)}`);
  await shot(page, 'usage-partition-day');
  t.deepEqual(page.errors, [], 'no script error, no CSP violation');
  t.log(`screenshots in ${artifacts}`);
});
