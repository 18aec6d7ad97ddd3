// The web view in headless Chromium, against a master filled the way nodes
// fill it (format, software and instance reports, connection parameters,
// promise results and usage journals over the SLAP HTTP API) plus a synthetic
// history of 90 days for 20 partitions (journals made by the node's own
// accounting code, fed to the store's ingestion). Each page is checked for
// content, on a wide and a phone-sized window; screenshots are saved under
// test-artifacts/ (or $SLAPOS_TEST_ARTIFACTS), never committed. The page's
// load and render time for that history is measured and logged (not asserted:
// the machine is shared).
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { periodJournal, usageMovements, type PeriodUsage } from '../../src/accounting/aggregate.js';
import { SlapClient } from '../../src/slap/client.js';
import { HOUR, isSeriesResource, seriesWrites, type UsagePoint } from '../../src/master/usage-series.js';
import { CHROMIUM, startChromium, type Page } from '../helpers/chromium.js';
import { startTestMaster } from '../helpers/master.js';
import { repoRoot } from '../helpers/paths.js';
import { computer, hardwareDocument } from '../helpers/semantics-suite.js';

const SR = 'https://lab.example/software/shop/software.cfg';
const BROKEN = 'https://lab.example/software/broken/software.cfg';
const PARTITIONS = 20;
const DAYS = 90;
const artifacts = process.env.SLAPOS_TEST_ARTIFACTS ?? path.join(repoRoot, 'test-artifacts', 'web-view');

/** A partition's usage in one period, shaped like the node's (a daily rhythm, partitions of different weight). */
function usage(index: number, at: number, period: number): PeriodUsage {
  const day = Math.sin((at / 86400) * 2 * Math.PI) * 0.5 + 0.5;
  const weight = 1 + (index % 5);
  const mib = 1024 * 1024;
  return {
    partition: `slappart${index}`, samples: 1, cpuSeconds: period * 0.02 * weight * (0.3 + day), ioReadBytes: weight * 3 * mib * (period / 3600), ioWriteBytes: weight * mib * (period / 3600),
    netInBytes: weight * (1 + day) * 4 * mib * (period / 3600), netOutBytes: weight * (1 + day) * 9 * mib * (period / 3600), netInPackets: 0, netOutPackets: 0,
    memoryMeanBytes: (200 + weight * 150 + day * 80) * mib, memoryPeakBytes: null, pidsMean: 12, diskMeanBytes: (500 + weight * 200 + at / 86400 % 30) * mib,
  };
}

(CHROMIUM ? test.serial : test.skip)(`web view: fleet, instances and usage pages over 90 days of 20 partitions, wide and phone-sized${CHROMIUM ? '' : ' (skipped: chromium not installed, apt-get install chromium)'}`, async (t) => {
  t.timeout(180_000);
  const master = await startTestMaster(t, 'COMP-1');
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  // What nodes and users do over the SLAP API.
  await client.loadComputerConfigurationFromXML(computer('COMP-1', PARTITIONS + 2));
  await client.loadComputerConfigurationFromXML(computer('COMP-2', 4));
  await client.supplySupply(SR, 'COMP-1');
  await client.supplySupply(BROKEN, 'COMP-2');
  await client.buildingSoftwareRelease(SR, 'COMP-1');
  await client.availableSoftwareRelease(SR, 'COMP-1');
  await client.softwareReleaseError(BROKEN, 'COMP-2', 'Installing eggs.\nWhile:\n  Installing python.\nError: <download failed>');
  for (let i = 0; i < PARTITIONS; i += 1) {
    const title = i === 0 ? 'shop' : `site-${i}`;
    await client.requestComputerPartition(SR, title, { parameters: { 'admin-password': `secret-${i}`, 'site-name': title }, filter: { computer_guid: 'COMP-1' } });
  }
  const child = await client.requestComputerPartition(SR, 'shop-db', { requester: { computerId: 'COMP-1', partitionId: 'slappart0' }, softwareType: 'mariadb' }).catch((e: Error) => e.message);
  t.is(typeof child === 'string' ? child : child.partitionId, 'slappart20', 'the root instance requested a child');
  for (let i = 0; i < PARTITIONS; i += 1) {
    await client.setComputerPartitionConnectionXml('COMP-1', `slappart${i}`, { url: `https://[fd00::${i + 1}]:8080/`, password: `pw-${i}` });
    if (i !== 3) await client.startedComputerPartition('COMP-1', `slappart${i}`);
  }
  await client.softwareInstanceError('COMP-1', 'slappart3', 'buildout failed: <instance profile>');
  const promises = (i: number) => [{ name: 'check-port.py', failed: i === 5, message: i === 5 ? 'port 8080 closed' : '', date: Date.now() / 1000 - 600 },
    { name: 'check-disk.py', failed: false, message: '', date: Date.now() / 1000 - 600 }];
  for (let i = 0; i < PARTITIONS; i += 1) {
    await client.call('POST', 'reportPromiseResults', { computer_id: 'COMP-1', computer_partition_id: `slappart${i}`, promise_list: JSON.stringify(promises(i)) });
  }
  await client.call('POST', 'reportHardwareStatus', { computer_id: 'COMP-1', hardware_status: JSON.stringify(hardwareDocument({ computer_id: 'COMP-1', hostname: 'node-1' })) });
  // The last hour as a node reports it: one journal per 5-minute period, over HTTP.
  const now = Math.floor(Date.now() / 1000);
  const recent = Math.floor(now / 300) * 300 - 12 * 300;
  for (let start = recent; start < now - 300; start += 300) {
    const journal = periodJournal('COMP-1', start, start + 300, Array.from({ length: PARTITIONS }, (_, i) => usage(i, start, 300))) as string;
    await client.useComputer('COMP-1', journal);
  }
  // The synthetic history: the node's movements of one hour for 90 days, added as the ingestion adds a journal's points
  // (without the XML round trip the last hour above went through: 2,160 journals cost seconds to parse).
  const began = performance.now();
  const first = Math.floor(now / HOUR) * HOUR - DAYS * 86400;
  const points: UsagePoint[] = [];
  for (let start = first; start < recent - HOUR; start += HOUR) {
    for (let i = 0; i < PARTITIONS; i += 1) {
      for (const m of usageMovements(usage(i, start, HOUR), HOUR)) {
        if (isSeriesResource(m.resource)) points.push({ partition: m.reference as string, resource: m.resource, at: start, quantity: m.quantity });
      }
    }
  }
  await master.store.transaction((tx) => tx.addSeries('COMP-1', seriesWrites(points, now)));
  t.log(`history of ${DAYS} days × ${PARTITIONS} partitions (${points.length} points) stored in ${Math.round(performance.now() - began)} ms (machine shared)`);

  mkdirSync(artifacts, { recursive: true });
  const browser = await startChromium(t);
  const shot = async (page: Page, name: string) => writeFileSync(path.join(artifacts, `${name}.png`), await page.screenshot());
  const text = (page: Page) => page.evaluate<string>('document.getElementById("main").innerText');
  const ready = (page: Page, view: string) => page.waitFor(`document.getElementById('main')?.dataset.ready === '${view}'`);

  // Fleet, wide.
  const fleet = await browser.open(`${master.url}?view=fleet`, { width: 1360, height: 900 });
  await ready(fleet, 'fleet');
  const fleetText = await text(fleet);
  t.regex(fleetText, /2 computer\(s\), 21 busy and 5 free partition\(s\)/);
  t.regex(fleetText, /✖ failing 2 failing: site-3, site-5/, 'failing instances named, in words');
  t.regex(fleetText, /Computer COMP-2/);
  t.regex(fleetText, /✖ error/, 'the broken release is shown as an error');
  t.is(await fleet.evaluate<string>('[...document.querySelectorAll("pre.log")].map((e) => e.textContent).join("|")').then((s) => s.includes('Error: <download failed>')), true, 'error log as text');
  t.regex(fleetText, /✔ available/);
  t.regex(fleetText, /Last contact: \d+ (s|min) ago/);
  t.regex(fleetText, /Host node-1, Linux 6\.1\.0-test[\s\S]*Memory\s+2\.0 GiB used of 8\.0 GiB \(25 %\)/, 'the hardware status of COMP-1');
  t.regex(fleetText, /No hardware status reported/, 'COMP-2 sent none');
  await shot(fleet, 'fleet-wide');

  // Instances: the tree, masked secrets, promise results.
  await fleet.goto(`${master.url}?view=instances`);
  await ready(fleet, 'instances');
  const instances = await text(fleet);
  t.regex(instances, /21 instance tree\(s\)|20 instance tree\(s\)/);
  t.is(await fleet.evaluate<number>('document.querySelectorAll("li[data-instance=\'shop\'] li[data-instance=\'shop-db\']").length'), 1, 'the child under its root');
  t.false(instances.includes('secret-0'), 'anonymous sees no secret');
  t.regex(instances, /••••••/);
  t.regex(instances, /port 8080 closed/);
  t.regex(instances, /failing since/);
  await shot(fleet, 'instances-wide');

  // Usage: the whole fleet over a month, measured from navigation start to the plots drawn.
  const usagePage = await browser.open(`${master.url}?view=usage&scope=fleet&range=month`, { width: 1360, height: 900 });
  await ready(usagePage, 'usage');
  await shot(usagePage, 'usage-fleet-month-wide');
  writeFileSync(path.join(artifacts, 'usage-fleet-month-viewport.png'), await usagePage.screenshot(false));
  const timing = await usagePage.evaluate<{ load: number; render: number; points: number }>(`({
    load: Math.round(performance.now()), render: Number(document.body.dataset.renderMs),
    points: [...document.querySelectorAll('.plot')].length })`);
  t.log(`usage page, fleet, month range (hourly points of ${PARTITIONS} partitions): ready ${timing.load} ms after navigation start, render (API + DOM + plots) ${timing.render} ms; machine shared with other test runs`);
  t.is(timing.points, 5, 'CPU, memory, disk, network in and out');
  t.is(await usagePage.evaluate<number>('document.querySelectorAll(".plot canvas").length'), 5);
  const usageText = await text(usagePage);
  t.regex(usageText, /Memory \(MiB\)/);
  t.is(await usagePage.evaluate<number>('document.querySelector(".usage table.numbers tbody").children.length'), PARTITIONS, 'one table row per partition');
  t.is(await usagePage.evaluate<string>('document.querySelector(".ranges strong").textContent'), 'month', 'the range in words');
  // The same data as JSON, for Grafana or a script.
  const api = await (await fetch(`${master.url}api/usage?scope=fleet&range=month&resource=memory`)).json() as { series: Array<{ times: number[]; values: number[]; resolution: number }> };
  t.is(api.series[0]?.resolution, HOUR);
  t.true((api.series[0]?.times.length ?? 0) > 24 * 30, 'hourly points over the month');

  // A shared link: one partition over a day; and a year of daily points for an instance tree.
  await usagePage.goto(`${master.url}?view=usage&scope=partition:COMP-1/slappart2&range=day`);
  await ready(usagePage, 'usage');
  t.is(await usagePage.evaluate<string>('document.getElementById("scope").value'), 'partition:COMP-1/slappart2');
  t.is(await usagePage.evaluate<number>('document.querySelector(".usage table.numbers tbody").children.length'), 1);
  await usagePage.goto(`${master.url}?view=usage&scope=instance:shop&range=year`);
  await ready(usagePage, 'usage');
  t.is(await usagePage.evaluate<number>('document.querySelectorAll(".plot canvas").length'), 5);

  // Phone-sized: one column, nothing wider than the screen but the tables' own scroll boxes.
  const phone = await browser.open(`${master.url}?view=usage&scope=computer:COMP-1&range=week`, { width: 390, height: 844, mobile: true });
  await ready(phone, 'usage');
  t.true(await phone.evaluate<boolean>('document.documentElement.scrollWidth <= 390 + 1'), 'no horizontal scroll on a phone');
  await shot(phone, 'usage-computer-week-phone');
  await phone.goto(`${master.url}?view=fleet`);
  await ready(phone, 'fleet');
  t.true(await phone.evaluate<boolean>('document.documentElement.scrollWidth <= 390 + 1'));
  await shot(phone, 'fleet-phone');

  t.deepEqual([...fleet.errors, ...usagePage.errors, ...phone.errors], [], 'no script error, no CSP violation');
  t.log(`screenshots in ${artifacts}`);
});
