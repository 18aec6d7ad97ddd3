// Pure parts of plugin promises: the interpreter rule, the launcher's request
// and output, skip decisions, generated results, bang accounting.
import test from 'ava';
import { mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { FALLBACK_PYTHON, interpreterFromScript, pluginPython, softwarePathOfPartition } from '../../src/promise-runner/interpreter.js';
import {
  executionTime, launcherRequest, NO_OUTPUT_MESSAGE, parseLauncherOutput, planPlugin, pluginBanged, pluginStatus, type LauncherOutput,
} from '../../src/promise-runner/plugin.js';
import type { CacheFile, ExecutionReport, PromiseSpec, StatusFile } from '../../src/promise-runner/types.js';
import { tempDir } from '../helpers/system.js';
import { writeRelease } from './plugin-helpers.js';

const spec: PromiseSpec = { title: 'check', name: 'check.py', path: '/srv/slappart0/etc/plugin/check.py', kind: 'python-plugin', folder: 'plugin' };
const report = (over: Partial<ExecutionReport> = {}): ExecutionReport => ({ exitCode: 0, signal: null, output: '', timedOut: false, duration: 0.12, ...over });
const none: LauncherOutput = { cache: undefined, result: undefined, lines: [] };
const cache = (over: Partial<CacheFile> = {}): CacheFile => ({
  is_tested: true, is_anomaly_detected: true, periodicity: 2, timestamp: 1000, next_run_after: 1120, module_file: '/x.py', module_file_mtime: 1, ...over,
});
const stored = (failed: boolean, message: string): StatusFile => ({
  title: 'check', name: 'check.py', path: spec.path, 'execution-time': 0.1, result: { type: 'Anomaly Result', failed, date: '2026-11-26T12:00:00+0000', message },
});

test('interpreter: the shebang of bin/buildout, or the exec line of a /bin/sh wrapper', (t) => {
  t.is(interpreterFromScript('#!/opt/slapgrid/abc/parts/python3/bin/python3.11\nimport sys\n'), '/opt/slapgrid/abc/parts/python3/bin/python3.11');
  t.is(interpreterFromScript('#!/usr/bin/python3 -S\n'), '/usr/bin/python3');
  t.is(interpreterFromScript('#!/bin/sh\n"exec" "/very/long/path/bin/python3" "$0" "$@"\n'), '/very/long/path/bin/python3');
  t.is(interpreterFromScript("#!/bin/sh\n'''exec' /long/python \"$0\" \"$@\" # '''\n"), '/long/python');
  t.is(interpreterFromScript('#!/bin/sh\nexec /p/python "$0" "$@"\n'), '/p/python');
  t.is(interpreterFromScript('#!/bin/sh\necho no exec here\n'), undefined);
  t.is(interpreterFromScript('#!python3\n'), undefined, 'a relative interpreter is not used');
  t.is(interpreterFromScript('import sys\n'), undefined);
  t.is(interpreterFromScript(''), undefined);
});

test('interpreter: from the release directory; the machine\'s python3 otherwise, with the reason', (t) => {
  const dir = tempDir(t, 'slapos-plugin-python-');
  const sr = writeRelease(path.join(dir, 'sr'), '/usr/bin/python3', true);
  t.deepEqual(pluginPython(sr), { python: '/usr/bin/python3', source: 'release' });
  const missing = writeRelease(path.join(dir, 'sr2'), '/nonexistent/python');
  t.like(pluginPython(missing), { python: FALLBACK_PYTHON, source: 'fallback' });
  t.regex(pluginPython(missing).why ?? '', /\/nonexistent\/python .* is not a file/);
  t.regex(pluginPython(path.join(dir, 'none')).why ?? '', /bin\/buildout does not exist/);
  t.like(pluginPython(undefined), { source: 'fallback' });
  // A link as bin/buildout is not followed by root.
  mkdirSync(path.join(dir, 'sr3', 'bin'), { recursive: true });
  symlinkSync('/etc/passwd', path.join(dir, 'sr3', 'bin', 'buildout'));
  t.regex(pluginPython(path.join(dir, 'sr3')).why ?? '', /symbolic link/);
});

test('the release of a partition: its software_release link, only into the software root', (t) => {
  const dir = tempDir(t, 'slapos-plugin-link-');
  const root = path.join(dir, 'soft');
  for (const [id, target] of [['p0', path.join(root, 'abc')], ['p1', '/etc'], ['p2', path.join(root, 'abc', 'bin')], ['p3', path.join(root, '..', 'x')]] as const) {
    mkdirSync(path.join(dir, id));
    symlinkSync(target, path.join(dir, id, 'software_release'));
  }
  mkdirSync(path.join(dir, 'p4'));
  t.is(softwarePathOfPartition(path.join(dir, 'p0'), root), path.join(root, 'abc'));
  t.is(softwarePathOfPartition(path.join(dir, 'p1'), root), undefined);
  t.is(softwarePathOfPartition(path.join(dir, 'p2'), root), undefined);
  t.is(softwarePathOfPartition(path.join(dir, 'p3'), root), undefined);
  t.is(softwarePathOfPartition(path.join(dir, 'p4'), root), undefined);
});

test('launcher request: the reference\'s options; bang only in anomaly mode', (t) => {
  const partition = { id: 'slappart0', path: '/srv/slappart0', uid: 980, gid: 980 };
  const request = launcherRequest(partition, spec, '/srv/slappart0/.slapgrid/promise/log', 'test', true, 20,
    { masterUrl: 'http://127.0.0.1:5190', computerId: 'COMP-REL', certificateRepository: '/etc/opt/slapos/ssl/partition_pki' }, 'm');
  t.deepEqual(request, {
    path: spec.path, name: 'check.py', 'partition-folder': '/srv/slappart0', 'log-folder': '/srv/slappart0/.slapgrid/promise/log',
    'check-anomaly': false, 'allow-bang': false, 'promise-timeout': 20, 'master-url': 'http://127.0.0.1:5190',
    'partition-cert': '/etc/opt/slapos/ssl/partition_pki/slappart0.crt', 'partition-key': '/etc/opt/slapos/ssl/partition_pki/slappart0.key',
    'partition-id': 'slappart0', 'computer-id': 'COMP-REL', 'slapgrid-version': '1.24.0', debug: null, marker: 'm',
  });
  t.like(launcherRequest(partition, spec, '/l', 'anomaly', true, 3, undefined, 'm'),
    { 'check-anomaly': true, 'allow-bang': true, 'master-url': null, 'partition-cert': null, 'computer-id': null });
});

test('launcher output: our marked lines, the last of each; forged or broken ones ignored', (t) => {
  const cacheLine = JSON.stringify(cache());
  const out = parseLauncherOutput([
    'hello', `M cache ${cacheLine}`, 'M result {broken', `M result {"type":"Test Result","failed":true,"date":"2026-11-26T12:14:27+0000","message":"x"}`,
    `N result {"type":"Test Result","failed":false}`, '',
  ].join('\n'), 'M');
  t.deepEqual(out.cache, cache());
  t.deepEqual(out.result, { type: 'Test Result', failed: true, date: '2026-11-26T12:14:27+0000', message: 'x' });
  t.deepEqual(out.lines, ['hello', 'N result {"type":"Test Result","failed":false}']);
  t.is(parseLauncherOutput('M cache {"periodicity":"2"}', 'M').cache, undefined, 'a cache with wrong types is ignored');
});

test('plan: a mode the promise disabled is skipped; anomaly mode waits for next_run_after; test mode is forced', (t) => {
  t.deepEqual(planPlugin('test', undefined, 5000), { action: 'run' });
  t.deepEqual(planPlugin('anomaly', cache(), 1100), { action: 'not-due' });
  t.deepEqual(planPlugin('anomaly', cache(), 1120), { action: 'run' });
  t.deepEqual(planPlugin('test', cache(), 1100), { action: 'run' });
  t.deepEqual(planPlugin('test', cache({ is_tested: false }), 5000), { action: 'disabled' });
  t.deepEqual(planPlugin('anomaly', cache({ is_anomaly_detected: false }), 5000), { action: 'disabled' });
  t.deepEqual(planPlugin('anomaly', cache({ is_tested: false }), 5000), { action: 'run' });
});

test('execution-time in the launcher\'s 0.05 s steps; the timeout when it expired', (t) => {
  t.is(executionTime(0.12, false, 20), 0.15);
  t.is(executionTime(0.25, false, 20), 0.25);
  t.is(executionTime(0.001, false, 20), 0.05);
  t.is(executionTime(4.2, true, 3), 3);
});

test('status: the promise\'s result; nothing for an empty one; generated ones as the reference', (t) => {
  const now = Date.UTC(2026, 10, 26, 12, 14, 27);
  const result = (r: LauncherOutput['result']): LauncherOutput => ({ ...none, result: r });
  t.deepEqual(pluginStatus(spec, 'test', report(), result({ type: 'Test Result', failed: true, date: '2026-11-26T12:14:00+0000', message: 'boom' }), 20, undefined, now), {
    title: 'check', name: 'check.py', path: spec.path, 'execution-time': 0.15,
    result: { type: 'Test Result', failed: true, date: '2026-11-26T12:14:00+0000', message: 'boom' },
  });
  t.is(pluginStatus(spec, 'test', report(), result({ type: 'Empty Result', failed: false, date: null, message: null }), 20, undefined, now), undefined);
  t.is(pluginStatus(spec, 'test', report(), result({ type: 'Test Result', failed: false, date: null, message: 'y'.repeat(6000) }), 20, undefined, now)?.result.message.length, 5003);
  // No result: test mode fails.
  t.like(pluginStatus(spec, 'test', report({ exitCode: 1 }), none, 20, undefined, now)?.result,
    { type: 'Test Result', failed: true, date: '2026-11-26T12:14:27+0000', message: NO_OUTPUT_MESSAGE });
  t.like(pluginStatus(spec, 'test', report({ timedOut: true, duration: 21 }), none, 20, undefined, now),
    { 'execution-time': 20, result: { failed: true, message: 'Error: Promise timed out after 20 seconds' } });
  // Anomaly mode: fails only when the previous result failed or said "error:".
  t.like(pluginStatus(spec, 'anomaly', report({ exitCode: 1 }), none, 20, undefined, now)?.result, { type: 'Anomaly Result', failed: false });
  t.like(pluginStatus(spec, 'anomaly', report({ exitCode: 1 }), none, 20, stored(false, 'all good'), now)?.result, { failed: false });
  t.like(pluginStatus(spec, 'anomaly', report({ exitCode: 1 }), none, 20, stored(true, 'x'), now)?.result, { failed: true });
  t.like(pluginStatus(spec, 'anomaly', report({ timedOut: true }), none, 20, stored(false, 'Error: Promise timed out after 20 seconds'), now)?.result, { failed: true });
  // A result printed before the timeout does not count: the run was killed.
  t.like(pluginStatus(spec, 'test', report({ timedOut: true }), result({ type: 'Test Result', failed: false, date: null, message: 'ok' }), 20, undefined, now)?.result,
    { failed: true });
});

test('bang accounting: a failed anomaly result of a run allowed to bang', (t) => {
  const failed = stored(true, 'x');
  const out: LauncherOutput = { ...none, result: { type: 'Anomaly Result', failed: true, date: null, message: 'x' } };
  t.true(pluginBanged('anomaly', true, failed, report(), out));
  t.false(pluginBanged('anomaly', false, failed, report(), out));
  t.false(pluginBanged('test', true, failed, report(), out));
  t.false(pluginBanged('anomaly', true, failed, report(), none), 'a generated result never bangs');
  t.false(pluginBanged('anomaly', true, stored(false, ''), report(), out));
});
