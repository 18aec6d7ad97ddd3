// Pure parts of the promise runner and the watchdog.
import test from 'ava';
import {
  classifyPromises, isDue, newCache, parseLogHistory, logRecord, resultFails, runVerdict, shouldBang, timeoutMessage,
  titleOf, transactionId, truncateMessage, utcDate, cacheApplies,
} from '../../src/promise-runner/plan.js';
import { decideBang, EventStreamParser, parseTokens } from '../../src/promise-runner/watchdog.js';
import { nodePromiseExit, parseOnlyCp } from '../../src/promise-runner/node-promise.js';
import { watchdogCommand, watchdogOptions } from '../../src/supervisor/config.js';
import { parseConfig } from '../../src/config/load.js';
import type { PromiseOutcome, PromiseSpec } from '../../src/promise-runner/types.js';

const entry = (name: string, isFile = true, executable = true) => ({ name, path: `/p/${name}`, isFile, executable });

test('titles drop the extension like os.path.splitext', (t) => {
  t.is(titleOf('check-port.py'), 'check-port');
  t.is(titleOf('check'), 'check');
  t.is(titleOf('a.b.sh'), 'a.b');
  t.is(titleOf('.hidden'), '.hidden');
});

test('plugins: .py are python plugins, executables run, __init__ and compiled files ignored; legacy: bad entries reported', (t) => {
  const { promises, bad } = classifyPromises(
    [entry('z.py', true, false), entry('__init__.py'), entry('old.pyc'), entry('b-check'), entry('data.txt', true, false)],
    [entry('c'), entry('dir', false, false), entry('a'), entry('noexec', true, false)],
  );
  t.deepEqual(promises.map((p) => [p.name, p.kind, p.folder]), [
    ['b-check', 'executable', 'plugin'], ['z.py', 'python-plugin', 'plugin'], ['a', 'executable', 'legacy'], ['c', 'executable', 'legacy'],
  ]);
  t.deepEqual(bad, ['/p/dir', '/p/noexec']);
});

const spec: PromiseSpec = { title: 'x', name: 'x', path: '/p/x', kind: 'executable', folder: 'legacy' };

test('test mode always runs; anomaly mode waits for next_run_after of a valid cache', (t) => {
  const cache = newCache(spec, 10.5, 1000, 2);
  t.is(cache.next_run_after, 1120);
  t.true(isDue('test', cache, 1001));
  t.false(isDue('anomaly', cache, 1119));
  t.true(isDue('anomaly', cache, 1120));
  t.true(isDue('anomaly', undefined, 0));
  t.true(cacheApplies(cache, spec, 10.5));
  t.false(cacheApplies(cache, spec, 11), 'a changed promise file runs now');
  t.false(cacheApplies(cache, { ...spec, path: '/q/x' }, 10.5));
});

test('verdicts: output, exit status, timeout message of the reference', (t) => {
  const base = { signal: null, timedOut: false, duration: 0.1 };
  t.deepEqual(runVerdict({ ...base, exitCode: 0, output: ' fine\n' }, 20), { failed: false, message: 'fine' });
  t.deepEqual(runVerdict({ ...base, exitCode: 1, output: 'port closed\n' }, 20), { failed: true, message: 'port closed' });
  t.regex(runVerdict({ ...base, exitCode: 3, output: '' }, 20).message, /exit status 3/);
  t.deepEqual(runVerdict({ ...base, exitCode: null, output: 'x', timedOut: true }, 20), { failed: true, message: 'Error: Promise timed out after 20 seconds' });
  t.is(timeoutMessage(20), 'Error: Promise timed out after 20 seconds');
  t.is(truncateMessage('a'.repeat(6000)), `...${'a'.repeat(5000)}`);
});

test('anomaly fails only after three failed runs in a row; test mode on the run itself', (t) => {
  const h = (...failed: boolean[]) => failed.map((f, i) => ({ id: String(i), failed: f }));
  t.true(resultFails('test', true, h(true)));
  t.false(resultFails('test', false, h(true, true, true)));
  t.false(resultFails('anomaly', true, h(true)));
  t.false(resultFails('anomaly', true, h(true, false, true, true)));
  t.true(resultFails('anomaly', true, h(false, true, true, true)));
});

test('log records parse back into runs', (t) => {
  const t1 = transactionId(1_700_000_000_000, 0.5);
  t.regex(t1, /^1700000000-\d{3}$/);
  const text =
    logRecord(1_700_000_000_000, 'INFO', '1-100', 'ok') +
    logRecord(1_700_000_060_000, 'ERROR', '2-200', 'line one\nline two') +
    logRecord(1_700_000_120_000, 'INFO', '3-300', 'x') +
    logRecord(1_700_000_120_000, 'ERROR', '3-300', 'y');
  t.deepEqual(parseLogHistory(text), [{ id: '1-100', failed: false }, { id: '2-200', failed: true }, { id: '3-300', failed: true }]);
  t.regex(logRecord(0, 'INFO', '0-100', 'm'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d - INFO - 0-100 - m\n$/);
  t.is(utcDate(Date.UTC(2024, 0, 2, 3, 4, 5)), '2024-01-02T03:04:05+0000');
});

test('bang: anomaly mode, fresh failure of an executable, once', (t) => {
  const outcome: PromiseOutcome = { promise: spec, ran: true, failed: true, status: undefined };
  t.true(shouldBang('anomaly', outcome, false));
  t.false(shouldBang('anomaly', outcome, true));
  t.false(shouldBang('test', outcome, false));
  t.false(shouldBang('anomaly', { ...outcome, ran: false }, false), 'a reused result does not bang');
  t.false(shouldBang('anomaly', { ...outcome, promise: { ...spec, kind: 'python-plugin' } }, false));
});

test('event stream parser: header, exact payload length, split chunks', (t) => {
  const payload = 'processname:svc-on-watch groupname:slappart0 from_state:RUNNING expected:0 pid:42';
  const header = `ver:3.0 server:supervisor serial:1 pool:watchdog poolserial:1 eventname:PROCESS_STATE_EXITED len:${Buffer.byteLength(payload)}\n`;
  const bytes = Buffer.from(header + payload + header + payload);
  const parser = new EventStreamParser();
  const events = [];
  for (let i = 0; i < bytes.length; i += 7) events.push(...parser.push(bytes.subarray(i, i + 7)));
  t.is(events.length, 2);
  t.is(events[0]?.headers.eventname, 'PROCESS_STATE_EXITED');
  t.deepEqual(events[1]?.payload, parseTokens(payload));
});

test('watchdog decisions follow the bang timestamp file', (t) => {
  const event = (processname: string, eventname = 'PROCESS_STATE_EXITED') => ({
    headers: { eventname }, payload: { processname, groupname: 'slappart0' },
  });
  const watched = event('svc-on-watch');
  t.deepEqual(decideBang(watched, undefined, undefined), {
    bang: true, partition: 'slappart0', message: 'svc-on-watch process in partition slappart0 encountered a problem',
  });
  t.false(decideBang(event('runner'), undefined, undefined).bang, 'etc/run never bangs');
  t.false(decideBang(event('svc-on-watch', 'PROCESS_STATE_STOPPED'), undefined, undefined).bang);
  t.true(decideBang(event('svc-on-watch', 'PROCESS_STATE_FATAL'), undefined, '5').bang);
  t.false(decideBang(watched, '5', undefined).bang, 'not deployed since the last bang');
  t.false(decideBang(watched, '5', '5').bang);
  t.true(decideBang(watched, '5', '6').bang);
  t.true(decideBang(watched, '1700000000.25', '1700000000.5\n').bang, 'float timestamps compare');
  t.false(decideBang({ headers: { eventname: 'PROCESS_STATE_EXITED' }, payload: { processname: 'a-on-watch', groupname: '../x' } }, undefined, undefined).bang);
});

test('--only-cp, exit status of node promise, watchdog command line', (t) => {
  t.deepEqual(parseOnlyCp(' slappart0, slappart1 '), ['slappart0', 'slappart1']);
  t.is(parseOnlyCp(undefined), undefined);
  const result = (failed: number) => ({ failed: Array.from({ length: failed }) }) as never;
  t.is(nodePromiseExit({ checked: [result(0)], ignored: [], errors: [] }), 0);
  t.is(nodePromiseExit({ checked: [result(0), result(1)], ignored: [], errors: [] }), 2);
  t.is(nodePromiseExit({ checked: [result(1)], ignored: [], errors: [{ id: 'x', error: 'y' }] }), 1);
  t.is(watchdogCommand('/etc/slapos.cfg', '/usr/bin/node', '/opt/s/bin/slapos-watchdog.js'), '/usr/bin/node /opt/s/bin/slapos-watchdog.js --cfg /etc/slapos.cfg');
  t.is(watchdogCommand('/etc/my slapos.cfg', '/n', '/w'), "/n /w --cfg '/etc/my slapos.cfg'");
});

test('the watchdog is configured only when it can bang', (t) => {
  t.deepEqual(watchdogOptions(parseConfig('[slapos]\ninstance_root = /srv/slapgrid\n', '/etc/s.cfg')), {});
  const full = watchdogOptions(parseConfig('[slapos]\nmaster_url = http://127.0.0.1:1/\ncomputer_id = C\n', '/etc/s.cfg'));
  t.regex(full.watchdogCommand ?? '', /slapos-watchdog\.js --cfg \/etc\/s\.cfg$/);
});
