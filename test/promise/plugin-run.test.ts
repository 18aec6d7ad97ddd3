// Python plugin promises on a real partition (plugin-promises.md): run by
// lib/promise-launcher.py as the partition user with the release's Python,
// against the stand-in GenericPromise of test/fixtures/plugin-promises (a TEST
// DOUBLE of slapos.core's), compared field by field with the contract.
import test from 'ava';
import { execa } from 'execa';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { partitionRef } from '../../src/promise-runner/discover.js';
import { runPartitionPromises, type RunPromisesOptions } from '../../src/promise-runner/runner.js';
import { isAlive as alive, isRoot, repoRoot } from '../helpers/system.js';
import { COMPUTER, createPartition, startRecordingMaster, writeScript, type TestPartition } from './helpers.js';
import { STAND_IN_EGGS, writePlugin, writeRelease } from './plugin-helpers.js';

const rootTest = isRoot ? test : test.skip;
const silent = pino({ level: 'silent' });

const STATUS_DATE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$/;
const LOG_LINE = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - (INFO|ERROR|WARNING) - \d+-\d{3} - /;

/** A logger that keeps what it is given (info and above), as text. */
function recordingLog(): { log: RunPromisesOptions['log']; lines: string[] } {
  const lines: string[] = [];
  const log = pino({ level: 'info' }, { write: (chunk: string) => lines.push(JSON.parse(chunk).msg as string) });
  return { log, lines };
}

/** etc/ and etc/plugin are the partition's, as buildout makes them. */
function pluginDir(p: TestPartition): string {
  const dir = path.join(p.dir, 'etc', 'plugin');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chownSync(path.join(p.dir, 'etc'), p.user.uid, p.user.gid);
  chownSync(dir, p.user.uid, p.user.gid);
  return dir;
}

/**
 * A release under `<base>/soft/<hash>` whose bin/buildout is a /bin/sh
 * wrapper exec'ing `<release>/parts/python3/bin/python3` (a link to the
 * machine's), and the partition's software_release link to it.
 */
function release(p: TestPartition): { softwareRoot: string; python: string } {
  const softwareRoot = path.join(path.dirname(p.instanceRoot), 'soft');
  const sr = path.join(softwareRoot, '0123456789abcdef0123456789abcdef');
  const python = path.join(sr, 'parts', 'python3', 'bin', 'python3');
  mkdirSync(path.dirname(python), { recursive: true, mode: 0o755 });
  symlinkSync('/usr/bin/python3', python);
  writeRelease(sr, python, true);
  symlinkSync(sr, path.join(p.dir, 'software_release'));
  return { softwareRoot, python };
}

rootTest('test mode: plugins run with the release\'s Python, the reference\'s status, cache and log files, config and messages', async (t) => {
  const p = createPartition(t);
  const { softwareRoot, python } = release(p);
  const dir = pluginDir(p);
  writePlugin(dir, 'rrec-dump-config.py', 'rrecpromise.dumpconfig', { frequency: '0.05', 'output-dir': p.dir });
  writePlugin(dir, 'rrec-failing.py', 'rrecpromise.failing', { frequency: '0.05' });
  writePlugin(dir, 'rrec-raises.py', 'rrecpromise.raises');
  writePlugin(dir, 'rrec-broken-import.py', 'rrecpromise.doesnotexist');
  writePlugin(dir, 'rrec-noisy.py', 'rrecpromise.noisy');
  writeFileSync(path.join(dir, 'rrec-syntax.py'), 'import sys\nsys.path[0:0] = []\ndef broken(:\n');
  writeScript(path.join(dir, 'exec-check'), 'echo "plugin executable"');
  writeScript(path.join(p.dir, 'etc', 'promise', 'legacy'), 'echo "legacy kept"');
  writeFileSync(path.join(p.dir, 'rrec-fail'), '');
  const { log, lines } = recordingLog();
  const result = await runPartitionPromises(partitionRef(p.instanceRoot, p.id), {
    mode: 'test', timeout: 20, log, softwareRoot,
    plugin: { masterUrl: 'http://127.0.0.1:5190', computerId: 'COMP-REL', certificateRepository: '/etc/opt/slapos/ssl/partition_pki' },
  });

  t.deepEqual(result.outcomes.map((o) => [o.promise.name, o.ran, o.failed]), [
    ['exec-check', true, false],
    ['rrec-broken-import.py', true, true],
    ['rrec-dump-config.py', true, false],
    ['rrec-failing.py', true, true],
    ['rrec-noisy.py', true, false],
    ['rrec-raises.py', true, true],
    ['rrec-syntax.py', true, true],
    ['legacy', true, false],
  ]);
  // The first failing promise in our (sorted) order; the reference names the first in directory order.
  t.is(result.error, "Promise 'rrec-broken-import.py' failed with output: Error: No output returned by the promise");

  // §3: the configuration the promise's constructor received, and what GenericPromise left for getConfig().
  const dump = JSON.parse(readFileSync(path.join(p.dir, 'rrec-dump-config.json'), 'utf8'));
  t.deepEqual(dump.received, {
    'computer-id': 'COMP-REL',
    debug: null,
    frequency: '0.05',
    'log-folder': path.join(p.dir, '.slapgrid', 'promise', 'log'),
    'master-url': 'http://127.0.0.1:5190',
    name: 'rrec-dump-config.py',
    'output-dir': p.dir,
    'partition-cert': '/etc/opt/slapos/ssl/partition_pki/slappart0.crt',
    'partition-folder': p.dir,
    'partition-id': 'slappart0',
    'partition-key': '/etc/opt/slapos/ssl/partition_pki/slappart0.key',
    path: path.join(dir, 'rrec-dump-config.py'),
    'promise-timeout': 20,
    queue: '<ResultQueue>',
    'slapgrid-version': '1.24.0',
  });
  t.deepEqual(dump.leftover, [
    'computer-id', 'frequency', 'master-url', 'output-dir', 'partition-cert', 'partition-id', 'partition-key', 'promise-timeout', 'slapgrid-version',
  ]);
  t.like(dump, { title: 'rrec-dump-config', name: 'rrec-dump-config.py', periodicity: 0.05, uid: p.user.uid, cwd: p.dir });
  t.is(dump['log-file'], path.join(p.dir, '.slapgrid', 'promise', 'log', 'rrec-dump-config.log'));
  t.is(dump.executable, python, "the release's interpreter, found through its /bin/sh wrapper");
  const groups = (await execa('id', ['-G', p.user.name])).stdout.split(' ').map(Number).sort((x, y) => x - y);
  t.deepEqual([dump.gid, dump.groups], [p.user.gid, groups], 'the partition user\'s groups (initgroups), as the reference');

  // §5: result/<title>.status.json, field by field.
  const state = path.join(p.dir, '.slapgrid', 'promise');
  const status = (title: string) => JSON.parse(readFileSync(path.join(state, 'result', `${title}.status.json`), 'utf8'));
  const failing = status('rrec-failing');
  t.deepEqual(Object.keys(failing), ['title', 'name', 'path', 'execution-time', 'result']);
  t.deepEqual(Object.keys(failing.result), ['type', 'failed', 'date', 'message']);
  t.like(failing, { title: 'rrec-failing', name: 'rrec-failing.py', path: path.join(dir, 'rrec-failing.py') });
  t.like(failing.result, { type: 'Test Result', failed: true, message: `rrec: simulated failure, ${p.dir}/rrec-fail exists` });
  t.regex(failing.result.date, STATUS_DATE);
  t.true(failing['execution-time'] > 0 && Math.abs(failing['execution-time'] * 20 - Math.round(failing['execution-time'] * 20)) < 1e-9,
    `execution-time in 0.05 s steps: ${failing['execution-time']}`);
  t.like(status('rrec-raises').result, { type: 'Test Result', failed: true, message: 'rrec: sense() raised' });
  t.like(status('rrec-dump-config').result, { type: 'Test Result', failed: false, message: 'rrec: config recorded' });
  t.like(status('rrec-noisy').result, { failed: false, message: 'rrec: noisy but fine' });
  t.like(status('rrec-broken-import').result, { type: 'Test Result', failed: true, message: 'Error: No output returned by the promise' });
  t.like(status('rrec-syntax').result, { failed: true, message: 'Error: No output returned by the promise' });

  // cache/<title>: written before run(), module_file = the module defining RunPromise.
  const cache = JSON.parse(readFileSync(path.join(state, 'cache', 'rrec-failing'), 'utf8'));
  t.deepEqual(Object.keys(cache), ['is_tested', 'is_anomaly_detected', 'periodicity', 'next_run_after', 'timestamp', 'module_file', 'module_file_mtime']);
  t.like(cache, { is_tested: true, is_anomaly_detected: true, periodicity: 0.05, module_file: path.join(STAND_IN_EGGS, 'rrecpromise', 'failing.py') });
  t.true(Math.abs(cache.next_run_after - cache.timestamp - 3) < 1e-6);
  // Python's st_mtime: seconds + nanoseconds * 1e-9, in doubles.
  const mtime = statSync(cache.module_file, { bigint: true });
  t.is(cache.module_file_mtime, Number(mtime.mtimeNs / 1_000_000_000n) + Number(mtime.mtimeNs % 1_000_000_000n) * 1e-9);
  t.false(existsSync(path.join(state, 'cache', 'rrec-broken-import')), 'no cache when the import fails');

  // log/<title>.log: the promise's own logger, the reference's line format.
  const failingLog = readFileSync(path.join(state, 'log', 'rrec-failing.log'), 'utf8');
  t.regex(failingLog, LOG_LINE);
  t.regex(failingLog, / - ERROR - \d+-\d{3} - rrec: simulated failure, .*rrec-fail exists\n$/);
  t.regex(readFileSync(path.join(state, 'log', 'rrec-raises.log'), 'utf8'), / - ERROR - \d+-\d{3} - rrec: sense\(\) raised\n$/);
  t.false(existsSync(path.join(state, 'log', 'rrec-broken-import.log')), 'no log when the promise never started');

  // Output and tracebacks go to the node's log, never into the result.
  // (the line is the message; the partition and the promise are its fields)
  t.true(lines.includes('rrec: to stdout'));
  t.true(lines.includes('rrec: to stderr'));
  t.true(lines.some((l) => l.includes("ModuleNotFoundError: No module named 'rrecpromise.doesnotexist'")));
  t.true(lines.some((l) => l.includes('SyntaxError')));
  t.false(lines.some((l) => l.startsWith('slapos-node-promise-') || l.includes(' slapos-node-promise-')), 'our protocol lines are not logged');

  // Files are the partition user's; __init__.py created as the reference does; the executables still ran.
  for (const file of ['result/rrec-failing.status.json', 'cache/rrec-failing', 'log/rrec-failing.log']) {
    const st = statSync(path.join(state, file));
    t.deepEqual([st.uid, st.gid], [p.user.uid, p.user.gid], file);
  }
  const init = statSync(path.join(dir, '__init__.py'));
  t.deepEqual([init.uid, init.size, init.mode & 0o777], [p.user.uid, 0, 0o644]);
  t.like(status('exec-check').result, { failed: false, message: 'plugin executable' });
  t.like(status('legacy').result, { failed: false, message: 'legacy kept' });
});

rootTest('anomaly mode: a failing plugin bangs once through the master, periodicity from the plugin, then recovers', async (t) => {
  const p = createPartition(t);
  const master = await startRecordingMaster(t, 1, p.instanceRoot);
  const dir = pluginDir(p);
  writePlugin(dir, 'rrec-failing.py', 'rrecpromise.failing', { frequency: '0.05' });
  writePlugin(dir, 'rrec-failing-too.py', 'rrecpromise.failing', { frequency: '0.05' });
  writePlugin(dir, 'rrec-testless.py', 'rrecpromise.testless');
  writeFileSync(path.join(p.dir, 'rrec-fail'), '');
  let clock = Date.now();
  let nodeBangs = 0;
  const options: RunPromisesOptions = {
    mode: 'anomaly', timeout: 20, log: silent, now: () => clock, bang: async () => { nodeBangs += 1; },
    plugin: { masterUrl: master.url, computerId: COMPUTER, certificateRepository: undefined },
  };
  const partition = partitionRef(p.instanceRoot, p.id);
  const before = await master.timestamp(p.id);

  const first = await runPartitionPromises(partition, options);
  t.deepEqual(first.outcomes.map((o) => [o.promise.name, o.ran, o.failed]), [
    ['rrec-failing-too.py', true, true], ['rrec-failing.py', true, true], ['rrec-testless.py', true, false],
  ]);
  t.deepEqual(master.calls('softwareInstanceBang').map((r) => r.body), [
    { computer_id: COMPUTER, computer_partition_id: p.id, message: 'Promise rrec-failing-too is failing' },
  ], 'one bang for the first failing promise; the second may not bang');
  t.deepEqual(first.bang, { promise: 'rrec-failing-too.py', message: 'Promise rrec-failing-too is failing' });
  t.is(nodeBangs, 0, 'the promise banged itself; the node does not bang again');
  t.not(await master.timestamp(p.id), before, 'the bang bumped the instance tree');
  const state = path.join(p.dir, '.slapgrid', 'promise');
  const status = JSON.parse(readFileSync(path.join(state, 'result', 'rrec-failing.status.json'), 'utf8'));
  t.like(status.result, { type: 'Anomaly Result', failed: true });
  t.regex(readFileSync(path.join(state, 'log', 'rrec-failing-too.log'), 'utf8'), / - INFO - \d+-\d{3} - Bang with message 'Promise rrec-failing-too is failing'\.\n$/);
  t.like(JSON.parse(readFileSync(path.join(state, 'cache', 'rrec-testless'), 'utf8')), { is_tested: false, is_anomaly_detected: true, periodicity: 2 });

  // 1 s later: not due (0.05 min = 3 s); the stored failures still count, nothing new is sent.
  clock += 1_000;
  const second = await runPartitionPromises(partition, options);
  t.is(second.skipped, 3);
  t.deepEqual(second.failed.map((o) => o.promise.name), ['rrec-failing-too.py', 'rrec-failing.py']);
  t.is(master.calls('softwareInstanceBang').length, 1);

  // Test mode skips the test-less promise once its cache says so; nothing is written for it.
  const tested = await runPartitionPromises(partition, { ...options, mode: 'test' });
  t.deepEqual(tested.outcomes.find((o) => o.promise.name === 'rrec-testless.py'), {
    promise: tested.outcomes[2]!.promise, ran: false, failed: false, status: undefined,
  });

  // Fixed, and due again (the testless promise's 2 min too): kept, no bang.
  rmSync(path.join(p.dir, 'rrec-fail'));
  clock += 200_000;
  const third = await runPartitionPromises(partition, options);
  t.deepEqual(third.outcomes.map((o) => [o.promise.name, o.ran, o.failed]), [
    ['rrec-failing-too.py', true, false], ['rrec-failing.py', true, false], ['rrec-testless.py', true, false],
  ]);
  t.is(third.error, undefined);
  t.is(master.calls('softwareInstanceBang').length, 1);
});

rootTest('a plugin that hangs is killed with its whole process group at the timeout; the next promise still runs', async (t) => {
  const p = createPartition(t);
  const dir = pluginDir(p);
  writePlugin(dir, 'rrec-sleeping.py', 'rrecpromise.sleeping');
  writePlugin(dir, 'rrec-zz-noisy.py', 'rrecpromise.noisy');
  const started = Date.now();
  const result = await runPartitionPromises(partitionRef(p.instanceRoot, p.id), { mode: 'test', timeout: 1, log: silent });
  t.true(Date.now() - started < 10_000, `took ${Date.now() - started} ms`);
  const hung = result.outcomes[0]?.status;
  t.like(hung, { 'execution-time': 1, result: { type: 'Test Result', failed: true, message: 'Error: Promise timed out after 1 seconds' } });
  t.like(result.outcomes[1], { ran: true, failed: false });
  const child = Number(readFileSync(path.join(p.dir, 'rrec-child.pid'), 'utf8'));
  t.true(child > 0);
  for (let i = 0; i < 30 && alive(child); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  t.false(alive(child), 'the promise\'s background child is gone too');
  // Anomaly mode: a timeout after a good result does not fail yet (the reference's _generatePromiseResult).
  writeFileSync(path.join(p.dir, '.slapgrid', 'promise', 'cache', 'rrec-sleeping'), '{}');
  const anomaly = await runPartitionPromises(partitionRef(p.instanceRoot, p.id), { mode: 'anomaly', timeout: 1, log: silent });
  t.like(anomaly.outcomes[0]?.status?.result, { type: 'Anomaly Result', failed: true, message: 'Error: Promise timed out after 1 seconds' },
    'the previous stored result failed, so the timeout fails');
});

const slapos = (args: string[]) =>
  execa(process.execPath, [path.join(repoRoot, 'bin', 'slapos.js'), ...args], { reject: false, env: { PATH: process.env.PATH ?? '' }, extendEnv: false, timeout: 60_000 });

rootTest('slapos node promise and node status show plugin promises like the others', async (t) => {
  const p = createPartition(t);
  const { softwareRoot } = release(p);
  const dir = pluginDir(p);
  writePlugin(dir, 'rrec-failing.py', 'rrecpromise.failing');
  writeScript(path.join(p.dir, 'etc', 'promise', 'legacy'), 'echo fine');
  writeFileSync(path.join(p.dir, 'rrec-fail'), '');
  const root = p.instanceRoot;
  const includeDir = path.join(root, 'etc', 'supervisord.conf.d');
  mkdirSync(includeDir, { recursive: true });
  writeFileSync(path.join(includeDir, `${p.id}.conf`), `[group:${p.id}]\n`);
  const cfg = path.join(path.dirname(root), 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\ninstance_root = ${root}\nsoftware_root = ${softwareRoot}\npidfile_instance = ${path.dirname(root)}/cp.pid\n`
    + `promise_timeout = 10\nmaster_url = http://127.0.0.1:5190\ncomputer_id = COMP-REL\n`);

  const failing = await slapos(['node', 'promise', '--cfg', cfg]);
  t.is(failing.exitCode, 2, failing.stderr);
  t.regex(failing.stderr, new RegExp(`slappart0: promises failed code=PROMISE_FAILED error=Promise 'rrec-failing.py' failed with output: rrec: simulated failure, ${p.dir}/rrec-fail exists`));
  const status = await slapos(['node', 'status', '--json', '--cfg', cfg]);
  t.is(status.exitCode, 0, status.stderr);
  t.like(JSON.parse(status.stdout).promises.slappart0, [
    { title: 'legacy', name: 'legacy', failed: false, type: 'Test Result', message: 'fine' },
    { title: 'rrec-failing', name: 'rrec-failing.py', failed: true, type: 'Test Result', message: `rrec: simulated failure, ${p.dir}/rrec-fail exists` },
  ]);
  const text = await slapos(['node', 'status', '--cfg', cfg]);
  t.regex(text.stdout, /slappart0\/rrec-failing\.py {2}FAILED/);

  rmSync(path.join(p.dir, 'rrec-fail'));
  const kept = await slapos(['node', 'promise', '--cfg', cfg]);
  t.is(kept.exitCode, 0, kept.stderr);
});

rootTest('node instance\'s promise step (test mode after processing): the release\'s Python, PromiseError with the reference\'s text', async (t) => {
  const { promisesStep, PromiseError } = await import('../../src/instance/steps/promises.js');
  const { partitionFiles } = await import('../../src/partition/files.js');
  const p = createPartition(t);
  const { python } = release(p);
  const dir = pluginDir(p);
  writePlugin(dir, 'rrec-dump-config.py', 'rrecpromise.dumpconfig', { 'output-dir': p.dir });
  writePlugin(dir, 'rrec-failing.py', 'rrecpromise.failing');
  writeFileSync(path.join(p.dir, 'rrec-fail'), '');
  // Only what the promise step reads; the rest of a partition run is not involved.
  const run = {
    id: p.id, files: partitionFiles(p.instanceRoot, p.id), user: { ...p.user, home: p.dir }, log: silent,
    softwarePath: path.join(path.dirname(p.instanceRoot), 'soft', '0123456789abcdef0123456789abcdef'),
    settings: { promiseTimeout: 20, masterUrl: 'http://127.0.0.1:5190', computerId: 'COMP-REL', certificateRepository: '/etc/opt/slapos/ssl/partition_pki' },
  } as unknown as Parameters<typeof promisesStep.run>[0];
  const error = await t.throwsAsync(promisesStep.run(run));
  t.true(error instanceof PromiseError);
  t.is(error?.message, `Promise 'rrec-failing.py' failed with output: rrec: simulated failure, ${p.dir}/rrec-fail exists`);
  const dump = JSON.parse(readFileSync(path.join(p.dir, 'rrec-dump-config.json'), 'utf8'));
  t.is(dump.executable, python);
  t.like(dump.received, { 'computer-id': 'COMP-REL', 'partition-cert': '/etc/opt/slapos/ssl/partition_pki/slappart0.crt', 'promise-timeout': 20 });
  rmSync(path.join(p.dir, 'rrec-fail'));
  await t.notThrowsAsync(promisesStep.run(run));
});

rootTest('one bang per run across kinds: after an executable banged, a failing plugin may not bang', async (t) => {
  const master = await startRecordingMaster(t);
  const p = createPartition(t);
  const dir = pluginDir(p);
  writeScript(path.join(dir, 'a-exec'), 'echo "exec down"; exit 1');
  writePlugin(dir, 'rrec-failing.py', 'rrecpromise.failing', { frequency: '0.05' });
  let clock = Date.now();
  const nodeBangs: string[] = [];
  const options: RunPromisesOptions = {
    mode: 'anomaly', timeout: 20, log: silent, now: () => clock, bang: async (message) => { nodeBangs.push(message); },
    plugin: { masterUrl: master.url, computerId: COMPUTER, certificateRepository: undefined },
  };
  const partition = partitionRef(p.instanceRoot, p.id);
  // The executable fails in anomaly mode after three failed runs in a row; the plugin keeps meanwhile.
  for (let run = 0; run < 2; run++) {
    const r = await runPartitionPromises(partition, options);
    t.deepEqual(r.failed.map((o) => o.promise.name), [], `run ${run}`);
    clock += 200_000;
  }
  writeFileSync(path.join(p.dir, 'rrec-fail'), '');
  const third = await runPartitionPromises(partition, options);
  t.deepEqual(third.failed.map((o) => o.promise.name), ['a-exec', 'rrec-failing.py']);
  t.deepEqual(nodeBangs, ['Promise a-exec is failing']);
  t.deepEqual(third.bang, { promise: 'a-exec', message: 'Promise a-exec is failing' });
  t.is(master.calls('softwareInstanceBang').length, 0, 'the plugin was not allowed to bang');
  const log = readFileSync(path.join(p.dir, '.slapgrid', 'promise', 'log', 'rrec-failing.log'), 'utf8');
  t.regex(log, /rrec: simulated failure/);
  t.notRegex(log, /Bang with message/);
});
