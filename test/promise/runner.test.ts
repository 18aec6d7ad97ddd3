// Promises of a real partition: run as its user, results in the reference's
// files, timeouts kill the whole process group, anomaly periodicity and bang.
import test from 'ava';
import { readFileSync, statSync, existsSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { partitionBanger } from '../../src/promise-runner/bang.js';
import { partitionRef } from '../../src/promise-runner/discover.js';
import { runPartitionPromises } from '../../src/promise-runner/runner.js';
import { userByUid } from '../../src/users/user.js';
import { isAlive as alive, isRoot } from '../helpers/system.js';
import { COMPUTER, createPartition, startRecordingMaster, writeScript } from './helpers.js';

const log = pino({ level: 'silent' });
const rootTest = isRoot ? test : test.skip;

rootTest('test mode: a kept and a failing promise, run as the partition user, stored as the reference', async (t) => {
  const p = createPartition(t);
  writeScript(path.join(p.dir, 'etc', 'promise', 'kept'), 'echo "uid=$(id -u) gid=$(id -g) cwd=$(pwd) home=$HOME path=$PATH user=$USER leak=$SECRET_OF_NODE"');
  writeScript(path.join(p.dir, 'etc', 'plugin', 'broken.sh'), 'echo "to stdout"; echo "port 8080 closed" >&2; exit 1');
  writeScript(path.join(p.dir, 'etc', 'plugin', 'check-site.py'), 'import slapos');
  process.env.SECRET_OF_NODE = 'x';
  t.teardown(() => delete process.env.SECRET_OF_NODE);
  const partition = partitionRef(p.instanceRoot, p.id);
  const result = await runPartitionPromises(partition, { mode: 'test', timeout: 20, log });

  t.deepEqual(result.outcomes.map((o) => [o.promise.name, o.ran, o.failed]), [
    ['broken.sh', true, true], ['check-site.py', true, true], ['kept', true, false],
  ]);
  t.is(result.error, "Promise 'broken.sh' failed with output: to stdout\nport 8080 closed");
  const kept = result.outcomes[2]?.status?.result.message ?? '';
  const passwdHome = userByUid(p.user.uid)?.home;
  const home = passwdHome && passwdHome !== '/nonexistent' ? passwdHome : p.dir; // nobody's home does not exist: the partition
  t.is(kept, `uid=${p.user.uid} gid=${p.user.gid} cwd=${p.dir} home=${home} path=/usr/local/bin:/usr/bin:/bin user=${p.user.name} leak=`);
  // A plugin that cannot be imported (no slapos on its sys.path): the reference's message.
  t.is(result.outcomes[1]?.status?.result.message, 'Error: No output returned by the promise');

  const dir = path.join(p.dir, '.slapgrid', 'promise');
  const status = JSON.parse(readFileSync(path.join(dir, 'result', 'broken.status.json'), 'utf8'));
  t.deepEqual(Object.keys(status).sort(), ['execution-time', 'name', 'path', 'result', 'title']);
  t.deepEqual(Object.keys(status.result).sort(), ['date', 'failed', 'message', 'type']);
  t.like(status, { title: 'broken', name: 'broken.sh', path: path.join(p.dir, 'etc', 'plugin', 'broken.sh') });
  t.like(status.result, { type: 'Test Result', failed: true, message: 'to stdout\nport 8080 closed' });
  t.regex(status.result.date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$/);
  t.is(typeof status['execution-time'], 'number');
  const cache = JSON.parse(readFileSync(path.join(dir, 'cache', 'broken'), 'utf8'));
  t.deepEqual(Object.keys(cache).sort(), ['is_anomaly_detected', 'is_tested', 'module_file', 'module_file_mtime', 'next_run_after', 'periodicity', 'timestamp']);
  t.is(cache.next_run_after, cache.timestamp + 120);
  t.regex(readFileSync(path.join(dir, 'log', 'broken.log'), 'utf8'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - ERROR - \d+-\d{3} - to stdout\nport 8080 closed\n$/);
  for (const file of ['result/broken.status.json', 'result/kept.status.json', 'cache/kept', 'log/kept.log']) {
    const st = statSync(path.join(dir, file));
    t.deepEqual([st.uid, st.gid], [p.user.uid, p.user.gid], file);
  }
  t.is(statSync(dir).uid, 0, 'the directories stay root\'s');
});

rootTest('a hanging promise is killed at the timeout, with its children', async (t) => {
  const p = createPartition(t);
  writeScript(path.join(p.dir, 'etc', 'promise', 'hang'), 'sleep 300 &\necho $! > "$PWD/child.pid"\necho started\nsleep 300');
  const started = Date.now();
  const result = await runPartitionPromises(partitionRef(p.instanceRoot, p.id), { mode: 'test', timeout: 1, log });
  t.true(Date.now() - started < 6_000, `took ${Date.now() - started} ms`);
  t.is(result.failed[0]?.status?.result.message, 'Error: Promise timed out after 1 seconds');
  const child = Number(readFileSync(path.join(p.dir, 'child.pid'), 'utf8'));
  t.true(child > 0);
  for (let i = 0; i < 30 && alive(child); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  t.false(alive(child), 'the background child of the promise is gone too');
});

rootTest('anomaly mode honours the periodicity; three failed runs in a row bang once through the master', async (t) => {
  const master = await startRecordingMaster(t);
  const p = createPartition(t);
  writeScript(path.join(p.dir, 'etc', 'promise', 'down'), 'echo "service down"; exit 1');
  writeScript(path.join(p.dir, 'etc', 'promise', 'down-too'), 'echo "also down"; exit 1');
  writeScript(path.join(p.dir, 'etc', 'promise', 'up'), 'exit 0');
  const config = parseConfig(`[slapos]\nmaster_url = ${master.url}\ncomputer_id = ${COMPUTER}\n`, '/test/slapos.cfg');
  const banger = partitionBanger(config);
  const partition = partitionRef(p.instanceRoot, p.id);
  let clock = Date.now();
  const run = () => runPartitionPromises(partition, { mode: 'anomaly', timeout: 20, log, now: () => clock, bang: (m) => banger(p.id, m) });
  const before = await master.timestamp(p.id);

  const first = await run();
  t.deepEqual(first.outcomes.map((o) => o.ran), [true, true, true]);
  t.is(first.failed.length, 0, 'one failure is tolerated in anomaly mode');
  t.is(JSON.parse(readFileSync(path.join(p.dir, '.slapgrid/promise/result/down.status.json'), 'utf8')).result.type, 'Anomaly Result');

  clock += 60_000;
  const early = await run();
  t.deepEqual(early.outcomes.map((o) => o.ran), [false, false, false], 'not due before the 2 minutes');
  t.is(early.skipped, 3);

  clock += 61_000;
  t.is((await run()).failed.length, 0);
  t.is(master.calls('softwareInstanceBang').length, 0);

  clock += 121_000;
  const third = await run();
  t.deepEqual(third.failed.map((o) => o.promise.name), ['down', 'down-too']);
  t.is(third.error, "Promise 'down' failed with output: service down");
  t.deepEqual(third.bang, { promise: 'down', message: 'Promise down is failing' });
  const bangs = master.calls('softwareInstanceBang');
  t.is(bangs.length, 1, 'one bang per run');
  t.like(bangs[0]?.body, { computer_id: COMPUTER, computer_partition_id: p.id, message: 'Promise down is failing' });
  t.not(await master.timestamp(p.id), before, "the master bumped the partition's tree");
});

rootTest('a partition owned by root never runs promises', async (t) => {
  const p = createPartition(t, 'slappart0', { name: 'root', uid: 0, gid: 0 });
  writeScript(path.join(p.dir, 'etc', 'promise', 'x'), 'exit 0');
  await t.throwsAsync(runPartitionPromises(partitionRef(p.instanceRoot, p.id), { mode: 'test', timeout: 5, log }), {
    message: /partition slappart0: .* is owned by root; promises never run as root/,
  });
  t.false(existsSync(path.join(p.dir, '.slapgrid')));
});
