// The master-scale benchmark's request mix (bench/master-scale-plan.ts): the
// rates of our node's loops, spread over the window.
import test from 'ava';
import { busyCount, clientSchedule, computerSchedule, occurrences, phase, type LoadPlan } from '../../bench/master-scale-plan.js';
import { loads } from '../../src/slap/marshal-decode.js';
import { readXmlTree } from '../../src/slap/xml-tree.js';

const plan = (over: Partial<LoadPlan> = {}): LoadPlan => ({
  urls: ['http://127.0.0.1:1'], computers: 100, partitions: 20, busy: 0.5, windowMs: 60_000, dayCompression: 1440, clients: 2, ...over,
});

test('occurrences are the events of a period that fall in the window', (t) => {
  t.deepEqual(occurrences(0.5, 1000, 3000), [500, 1500, 2500]);
  t.deepEqual(occurrences(0.9, 10_000, 5000), []);
});

test('phases are spread evenly over [0, 1)', (t) => {
  const buckets = new Array<number>(10).fill(0);
  for (let c = 0; c < 1000; c++) {
    const p = phase(c);
    t.true(p >= 0 && p < 1);
    buckets[Math.floor(p * 10)]! += 1;
  }
  for (const count of buckets) t.true(count >= 95 && count <= 105, `bucket of ${count}`);
});

test('over one minute (a day compressed to one minute) each computer sends the mix of our loops', (t) => {
  const p = plan();
  t.is(busyCount(p), 10);
  const requests = computerSchedule(p, 7);
  const count = (endpoint: string) => requests.filter((r) => r.endpoint === endpoint).length;
  t.is(count('getFullComputerInformation'), 2, 'software and instance loops, once a minute each');
  t.is(count('setComputerPartitionConnectionXml'), 10, 'one change per allocated partition per day');
  t.is(count('startedComputerPartition'), 20, 'the daily re-run and the change of each allocated partition');
  t.is(count('availableSoftwareRelease'), 1);
  t.is(count('useComputer'), 1);
  t.true(requests.every((r) => r.computer === 7 && r.at >= 0 && r.at < p.windowMs + 100));
  const connection = requests.find((r) => r.endpoint === 'setComputerPartitionConnectionXml')!;
  const form = new URLSearchParams(connection.body);
  t.is(form.get('computer_id'), 'COMP-7');
  t.like(loads(form.get('connection_xml') ?? '') as object, { 'url-ipv6': 'http://[fd00::7:0]:8080/' });
  const usage = new URLSearchParams(requests.find((r) => r.endpoint === 'useComputer')!.body);
  t.is(readXmlTree(usage.get('use_string') ?? '').name, 'journal');
});

test('a window shorter than the minute holds that share of the polls', (t) => {
  const p = plan({ computers: 1000, windowMs: 15_000, dayCompression: 1 });
  let polls = 0;
  for (let c = 0; c < p.computers; c++) polls += computerSchedule(p, c).filter((r) => r.endpoint === 'getFullComputerInformation').length;
  t.true(Math.abs(polls - 500) <= 10, `${polls} polls for 1000 computers × 2/min × 15 s`);
});

test('each client user reads one instance, one computer and one search every 10 s', (t) => {
  const requests = clientSchedule(plan(), 1);
  t.is(requests.length, 18);
  const search = requests.find((r) => r.endpoint === 'hateoas (search)')!;
  t.regex(new URLSearchParams(search.path.split('?')[1]).get('query') ?? '', /AND title:="inst-\d+-0"$/);
});
