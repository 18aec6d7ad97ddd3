// The daemon: event-driven instance passes (bang, request, software
// completed) with a fake loop registry that records concurrency; and the real
// `slapos node daemon` with its /metrics and a real child loop.
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { parseConfig } from '../../src/config/load.js';
import { startDaemon } from '../../src/node/daemon/daemon.js';
import type { LoopSpec } from '../../src/node/daemon/scheduler.js';
import { NodeMetrics } from '../../src/node/metrics.js';
import { freePort } from '../helpers/proxy-process.js';
import { isRoot, tempDir } from '../helpers/system.js';
import { cli, memoryLogger, prometheusProblems } from './helpers.js';
import { stopSupervisord } from '../instance/env.js';

interface Probe {
  starts: number[];
  running: number;
  maxRunning: number;
}

function fakeLoop(name: string, ms: number, probe: Probe): LoopSpec {
  return {
    name,
    run: async () => {
      probe.starts.push(Date.now());
      probe.running += 1;
      probe.maxRunning = Math.max(probe.maxRunning, probe.running);
      await sleep(ms);
      probe.running -= 1;
      return 0;
    },
  };
}

async function until(what: string, check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test.serial('a bang file starts an instance pass within seconds; passes never overlap; a burst costs one more pass', async (t) => {
  const dir = tempDir(t);
  const inst = path.join(dir, 'inst');
  const soft = path.join(dir, 'soft');
  mkdirSync(path.join(inst, 'slappart0'), { recursive: true });
  mkdirSync(path.join(soft, 'abc123'), { recursive: true });
  const config = parseConfig(`[slapos]\ncomputer_id = C\nmaster_url = http://127.0.0.1:1\ninstance_root = ${inst}\nsoftware_root = ${soft}\n` +
    '[daemon]\nmetrics_port = 0\n', 'x.cfg');
  const probe: Probe = { starts: [], running: 0, maxRunning: 0 };
  const { log } = memoryLogger();
  const metrics = new NodeMetrics({ processMetrics: false });
  const daemon = await startDaemon({ configFile: 'x.cfg', config, log, metrics, loops: [fakeLoop('instance', 400, probe)], debounceMs: 100 });
  t.teardown(() => daemon.stop());

  // 1. a bang, as the watchdog writes it
  const before = Date.now();
  writeFileSync(path.join(inst, 'slappart0', '.slapos_latest_bang_timestamp'), '1700000000');
  await until('the first instance pass', () => probe.starts.length === 1);
  const latency = (probe.starts[0] as number) - before;
  t.log(`bang → instance pass: ${latency} ms`);
  t.true(latency < 5000);

  // 2. a burst of bangs and schedule triggers while it runs: one more pass, never two at once
  for (let i = 0; i < 5; i += 1) {
    writeFileSync(path.join(inst, 'slappart0', '.slapos_latest_bang_timestamp'), String(1700000001 + i));
    daemon.scheduler.trigger('instance', 'schedule');
    await sleep(30);
  }
  await until('the follow-up pass', () => probe.starts.length === 2);
  await until('the passes to end', () => !daemon.scheduler.isRunning('instance'));
  await sleep(300);
  t.is(probe.starts.length, 2);
  t.is(probe.maxRunning, 1);

  // 3. a partition created after start, a request file in it, and a finished software release
  mkdirSync(path.join(inst, 'slappart1'));
  await sleep(200);
  writeFileSync(path.join(inst, 'slappart1', '.slapos-request-transaction-slappart1'), 'child\n');
  await until('the pass for the request file', () => probe.starts.length === 3);
  await until('the pass to end', () => !daemon.scheduler.isRunning('instance'));
  writeFileSync(path.join(soft, 'abc123', '.completed'), '');
  await until('the pass for the completed release', () => probe.starts.length === 4);
  t.is(probe.maxRunning, 1);
  const text = await metrics.registry.metrics();
  t.regex(text, /slapos_node_events_total\{kind="bang"\} [1-9]/);
  t.regex(text, /slapos_node_events_total\{kind="request"\} 1\n/);
  t.regex(text, /slapos_node_events_total\{kind="software_completed"\} 1\n/);
  t.regex(text, /slapos_node_loop_skipped_total\{loop="instance"\} [1-9]/);
});

test.serial('many concurrent triggers of a slow loop still run it one at a time', async (t) => {
  const dir = tempDir(t);
  const config = parseConfig(`[slapos]\ncomputer_id = C\nmaster_url = http://127.0.0.1:1\ninstance_root = ${dir}\n[daemon]\nmetrics_port = 0\nwatch = false\n`, 'x.cfg');
  const probe: Probe = { starts: [], running: 0, maxRunning: 0 };
  const { log } = memoryLogger();
  const daemon = await startDaemon({ configFile: 'x.cfg', config, log, metrics: new NodeMetrics({ processMetrics: false }), loops: [fakeLoop('instance', 150, probe)], debounceMs: 0 });
  t.teardown(() => daemon.stop());
  for (let i = 0; i < 50; i += 1) daemon.scheduler.trigger('instance', i % 2 ? 'event' : 'schedule');
  await until('the passes to end', () => !daemon.scheduler.isRunning('instance'));
  t.is(probe.starts.length, 2);
  t.is(probe.maxRunning, 1);
});

const rootOnly = isRoot ? test.serial : test.skip;

rootOnly('slapos node daemon: /metrics is valid Prometheus text; a bang runs the real instance loop as a child; SIGTERM stops it', async (t) => {
  const dir = tempDir(t);
  const inst = path.join(dir, 'inst');
  mkdirSync(path.join(inst, 'slappart0'), { recursive: true });
  const port = await freePort();
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\ncomputer_id = C\nmaster_url = http://127.0.0.1:9\nsoftware_root = ${dir}/soft\ninstance_root = ${inst}\n` +
    `pidfile_instance = ${dir}/cp.pid\n[daemon]\nmetrics_port = ${port}\nsoftware_schedule =\ninstance_schedule =\nreport_schedule =\ncollect_schedule =\n`);
  // The instance loop, offline here, starts the node's supervisord: stopped after the daemon.
  t.teardown(() => stopSupervisord(inst));
  const daemon = cli(['node', 'daemon', '--cfg', cfg]);
  t.teardown(() => { daemon.child.kill('SIGKILL'); });
  const url = `http://127.0.0.1:${port}/metrics`;
  let text = '';
  for (let i = 0; i < 100 && text === ''; i += 1) {
    try {
      const res = await request(url);
      t.is(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
      text = await res.body.text();
    } catch {
      await sleep(100);
    }
  }
  t.deepEqual(prometheusProblems(text), []);
  t.regex(text, /^# TYPE slapos_node_loop_runs_total counter$/m);
  t.regex(text, /^slapos_node_process_cpu_user_seconds_total /m);
  t.is((await request(`http://127.0.0.1:${port}/`)).statusCode, 404);

  const banged = Date.now();
  writeFileSync(path.join(inst, 'slappart0', '.slapos_latest_bang_timestamp'), '1');
  for (let i = 0; i < 150; i += 1) {
    text = await (await request(url)).body.text();
    if (/slapos_node_loop_runs_total\{loop="instance"/.test(text)) break;
    await sleep(100);
  }
  t.log(`bang → instance child finished in ${Date.now() - banged} ms`);
  t.deepEqual(prometheusProblems(text), []);
  // Whatever the instance loop's result (today: "not implemented yet", exit 1), one run was recorded.
  t.regex(text, /^slapos_node_loop_runs_total\{loop="instance",result="\w+"\} 1$/m);
  t.regex(text, /^slapos_node_events_total\{kind="bang"\} 1$/m);
  t.regex(text, /^slapos_node_loop_duration_seconds_count\{loop="instance"\} 1$/m);
  const stopping = Date.now();
  daemon.child.kill('SIGTERM');
  const result = await daemon.done;
  t.log(`stopped in ${Date.now() - stopping} ms`);
  t.is(result.status, 0, result.stderr);
  t.regex(result.stderr, /stopping .*signal=SIGTERM/);
  t.regex(result.stderr, /loop instance: run started reason=event/);
  t.notRegex(result.stderr, /Cannot find module/, 'the child is the real slapos CLI');
});

test('the strict Prometheus checker rejects what is not exposition text', (t) => {
  t.deepEqual(prometheusProblems('# HELP a_total A\n# TYPE a_total counter\na_total{x="1"} 3\n'), []);
  t.notDeepEqual(prometheusProblems('a_total 3\n'), []);
  t.notDeepEqual(prometheusProblems('# TYPE a counter\na{x=1} 3\n'), []);
  t.notDeepEqual(prometheusProblems('# TYPE a counter\na 3'), []);
  t.notDeepEqual(prometheusProblems('# TYPE a gauge\na three\n'), []);
});
