// The fleet benchmark's pure parts (bench/fleet-plan.ts): distinct per-node
// ranges, and the p99 read from the master's /metrics histogram.
import test from 'ava';
import { fleetAddresses, histogramQuantile, parseHistogram, subtractHistogram } from '../../bench/fleet-plan.js';

test('every node gets its own /64, /24 and uplink address; out-of-range node numbers are refused', (t) => {
  const all = Array.from({ length: 151 }, (_, n) => fleetAddresses(n));
  for (const key of ['ipv6', 'ipv4', 'ipv4Network', 'uplink'] as const) t.is(new Set(all.map((a) => a[key])).size, 151, key);
  t.deepEqual(fleetAddresses(10), { ipv6: 'fd00:20:a::1/64', ipv4: '10.110.0.1/24', ipv4Network: '10.110.0.0/24', uplink: '10.253.1.11/16' });
  t.throws(() => fleetAddresses(151), { message: /out of 0\.\.150/ });
  t.throws(() => fleetAddresses(-1));
  t.throws(() => fleetAddresses(1.5));
});

const scrape = (fast: number, slow: number, metrics: number) => [
  '# HELP slapos_master_request_duration_seconds Time to answer a request',
  '# TYPE slapos_master_request_duration_seconds histogram',
  `slapos_master_request_duration_seconds_bucket{le="0.001",endpoint="/a"} ${fast}`,
  `slapos_master_request_duration_seconds_bucket{le="0.1",endpoint="/a"} ${fast + slow}`,
  `slapos_master_request_duration_seconds_bucket{le="+Inf",endpoint="/a"} ${fast + slow}`,
  `slapos_master_request_duration_seconds_sum{endpoint="/a"} ${fast * 0.0005 + slow * 0.05}`,
  `slapos_master_request_duration_seconds_count{endpoint="/a"} ${fast + slow}`,
  `slapos_master_request_duration_seconds_bucket{le="0.001",endpoint="/metrics"} 0`,
  `slapos_master_request_duration_seconds_bucket{le="0.1",endpoint="/metrics"} 0`,
  `slapos_master_request_duration_seconds_bucket{le="+Inf",endpoint="/metrics"} ${metrics}`,
  `slapos_master_request_duration_seconds_count{endpoint="/metrics"} ${metrics}`,
  'slapos_master_requests_total{endpoint="/a",status="200"} 5',
].join('\n');

test('the latency histogram is summed over endpoints, /metrics left out, and read between two scrapes', (t) => {
  const keep = (labels: string) => !labels.includes('metrics');
  const before = parseHistogram(scrape(90, 0, 1), 'slapos_master_request_duration_seconds', keep);
  const after = parseHistogram(scrape(188, 2, 9), 'slapos_master_request_duration_seconds', keep);
  t.deepEqual(after.buckets, [[0.001, 188], [0.1, 190], [Infinity, 190]]);
  t.is(after.count, 190);
  const window = subtractHistogram(after, before);
  t.deepEqual(window.buckets, [[0.001, 98], [0.1, 100], [Infinity, 100]]);
  t.is(histogramQuantile(window, 0.5), 0.001);
  t.is(histogramQuantile(window, 0.99), 0.1);
  t.true(Number.isNaN(histogramQuantile(subtractHistogram(before, before), 0.99)));
});
