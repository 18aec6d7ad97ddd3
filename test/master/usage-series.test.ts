// Usage series (usage-series.ts): journal points, the three resolutions and
// their retention (pure), then through a real SQLite store: a journal posted
// with useComputer lands in every resolution and sums per bucket.
import test from 'ava';
import path from 'node:path';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { periodJournal, type PeriodUsage } from '../../src/accounting/aggregate.js';
import * as node from '../../src/master/node-ops.js';
import {
  DAY, HOUR, journalPoints, parseTioDate, RAW, RAW_DAYS, recordJournal, seriesWrites, sumSeries,
} from '../../src/master/usage-series.js';
import { tempDir } from '../helpers/master.js';

const usage = (partition: string, cpuSeconds: number, memoryMiB: number): PeriodUsage => ({
  partition, samples: 1, cpuSeconds, ioReadBytes: 0, ioWriteBytes: 0, netInBytes: 2 * 1024 * 1024, netOutBytes: 0, netInPackets: 0,
  netOutPackets: 0, memoryMeanBytes: memoryMiB * 1024 * 1024, memoryPeakBytes: null, pidsMean: null, diskMeanBytes: null,
});

test('a journal of the node gives one point per partition and series resource, at the period start', (t) => {
  const start = Date.UTC(2026, 0, 2, 3, 0, 0) / 1000;
  const journal = periodJournal('COMP-1', start, start + 60, [usage('slappart0', 30, 100), usage('slappart1', 6, 50)]) as string;
  const points = journalPoints(journal, 0);
  t.deepEqual(points.filter((p) => p.resource === 'service_module/cpu_load_percent').map((p) => [p.partition, p.at, p.quantity]),
    [['slappart0', start, 50], ['slappart1', start, 10]]);
  t.deepEqual(points.filter((p) => p.resource === 'service_module/memory_used').map((p) => p.quantity), [100, 50]);
  t.false(points.some((p) => p.resource.endsWith('cpu_time')), 'resources outside the series are left in usage_report');
  t.is(parseTioDate('2026-01-02 at 03:00:00'), start, "the reference's stop_date form");
  t.deepEqual(journalPoints('<journal><broken', 0), []);
});

test('each point goes to the resolutions that still keep it', (t) => {
  const now = 100 * DAY;
  const point = (age: number) => ({ partition: 'p', resource: 'service_module/memory_used' as const, at: now - age, quantity: 1 });
  const resolutions = (age: number) => seriesWrites([point(age)], now).map((w) => w.resolution);
  t.deepEqual(resolutions(60), [RAW, HOUR, DAY]);
  t.deepEqual(resolutions((RAW_DAYS + 1) * DAY), [HOUR, DAY]);
  t.deepEqual(resolutions(200 * DAY), [DAY]);
  t.deepEqual(seriesWrites([point(90)], now).map((w) => w.bucket), [now - 90, Math.floor((now - 90) / HOUR) * HOUR, Math.floor((now - 90) / DAY) * DAY]);
});

test('sumSeries: a gauge is the mean of its bucket, summed over partitions; a counter is the sum', (t) => {
  const rows = [
    { computer_reference: 'C', partition_reference: 'p0', bucket: 0, total: 30, samples: 3, maximum: 20 },
    { computer_reference: 'C', partition_reference: 'p1', bucket: 0, total: 5, samples: 1, maximum: 5 },
    { computer_reference: 'C', partition_reference: 'p0', bucket: 3600, total: 10, samples: 1, maximum: 10 },
  ];
  const gauge = sumSeries('service_module/memory_used', HOUR, 0, 7200, rows);
  t.deepEqual([gauge.times, gauge.values], [[0, 3600], [15, 10]]);
  t.like(gauge.parts[0], { partition: 'p0', mean: 10, max: 20 });
  const counter = sumSeries('service_module/network_in', HOUR, 0, 7200, rows);
  t.deepEqual(counter.values, [35, 10]);
});

test('journals posted to the store fill the three resolutions, summed per hour and day, raw replaced when resent', async (t) => {
  const store = new SqliteStore(path.join(tempDir(t), 'proxy.db'));
  t.teardown(() => store.close());
  await store.transaction((tx) => tx.upsertComputer({ reference: 'COMP-1', address: null, netmask: null }));
  const hour = Math.floor(Date.now() / 1000 / HOUR) * HOUR - 2 * HOUR;
  const first = periodJournal('COMP-1', hour, hour + 60, [usage('slappart0', 30, 100)]) as string;
  const second = periodJournal('COMP-1', hour + 60, hour + 120, [usage('slappart0', 12, 300)]) as string;
  await store.transaction((tx) => node.storeUsage(tx, 'COMP-1', first));
  await store.transaction((tx) => node.storeUsage(tx, 'COMP-1', second));
  await store.transaction((tx) => recordJournal(tx, 'COMP-1', second, Date.now() / 1000));
  const read = (resource: string, resolution: number) => store.read((tx) => tx.listSeries(`service_module/${resource}`, resolution, 0, Infinity, 'COMP-1'));
  t.deepEqual((await read('memory_used', RAW)).map((r) => [r.bucket, r.total, r.samples]), [[hour, 100, 1], [hour + 60, 300, 1]]);
  const hourly = await read('memory_used', HOUR);
  t.deepEqual(hourly.map((r) => [r.bucket, r.samples, r.maximum]), [[hour, 3, 300]], 'the resent journal counts again in the hour (known limit)');
  t.is((await read('network_in', DAY))[0]?.total, 6);
  t.deepEqual(await store.read((tx) => tx.listSeries('service_module/memory_used', RAW, 0, Infinity, 'OTHER')), []);
});
