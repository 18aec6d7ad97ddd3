// The CLI: `slapos node bang`, `slapos node promise`, `slapos node status`
// (spawned asynchronously: the master answers from this process).
import test from 'ava';
import { execa } from 'execa';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isRoot, repoRoot } from '../helpers/system.js';
import { COMPUTER, createPartition, startRecordingMaster, writeScript } from './helpers.js';

const rootTest = isRoot ? test : test.skip;
const slapos = (args: string[]) =>
  execa(process.execPath, [path.join(repoRoot, 'bin', 'slapos.js'), ...args], { reject: false, env: { PATH: process.env.PATH ?? '' }, extendEnv: false, timeout: 60_000 });

rootTest('slapos node bang posts computerBang', async (t) => {
  const master = await startRecordingMaster(t);
  const p = createPartition(t);
  const cfg = path.join(path.dirname(p.instanceRoot), 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\nmaster_url = ${master.url}\ncomputer_id = ${COMPUTER}\n`);
  const result = await slapos(['node', 'bang', '-m', 'Reboot', '--cfg', cfg]);
  t.is(result.exitCode, 0, result.stderr);
  t.regex(result.stdout, /Banging to http:\/\/127\.0\.0\.1:\d+\//);
  t.deepEqual(master.calls('computerBang').map((r) => r.body), [{ computer_id: COMPUTER, message: 'Reboot' }]);
});

rootTest('slapos node promise checks started partitions only, exit 2 on failure; status shows the results', async (t) => {
  const started = createPartition(t, 'slappart0');
  const stopped = createPartition(t, 'slappart1', undefined, started.instanceRoot);
  const root = started.instanceRoot;
  const includeDir = path.join(root, 'etc', 'supervisord.conf.d');
  mkdirSync(includeDir, { recursive: true });
  writeFileSync(path.join(includeDir, 'slappart0.conf'), '[group:slappart0]\n');
  writeScript(path.join(started.dir, 'etc', 'promise', 'check'), 'test -e "$PWD/ok" || { echo "not ok yet"; exit 1; }');
  writeScript(path.join(stopped.dir, 'etc', 'promise', 'check'), 'exit 1');
  const cfg = path.join(path.dirname(root), 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\ninstance_root = ${root}\npidfile_instance = ${path.dirname(root)}/cp.pid\npromise_timeout = 5\ncomputer_id = ${COMPUTER}\n`);
  const logFile = path.join(path.dirname(root), 'node.jsonl');

  const failing = await slapos(['--log-file', logFile, 'node', 'promise', '--cfg', cfg, '--json']);
  t.is(failing.exitCode, 2, failing.stderr);
  t.regex(failing.stderr, /slappart0: promises failed code=PROMISE_FAILED error=Promise 'check' failed with output: not ok yet/);
  const summary = JSON.parse(failing.stdout);
  t.deepEqual(summary.ignored, [{ id: 'slappart1', why: 'not started' }]);
  t.false(existsSync(path.join(stopped.dir, '.slapgrid')), 'a stopped partition is not checked');
  // docs/operations.md's filter (jq 'select(.computer == C and .partition == P)'), on the real --log-file.
  const lines = readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.true(lines.every((l) => l.computer === COMPUTER), 'every line names the computer');
  const mine = lines.filter((l) => l.computer === COMPUTER && l.partition === 'slappart0');
  t.true(mine.some((l) => l.msg === 'checking promise' && l.promise === 'check'));
  t.true(mine.some((l) => l.code === 'PROMISE_FAILED'));
  t.false(lines.some((l) => l.partition === 'slappart1'), 'nothing about the stopped partition');

  const status = await slapos(['node', 'status', '--json', '--cfg', cfg]);
  t.is(status.exitCode, 0, status.stderr);
  const json = JSON.parse(status.stdout);
  t.false(json.processes.supervisord.running);
  t.like(json.promises.slappart0[0], { title: 'check', name: 'check', failed: true, type: 'Test Result', message: 'not ok yet' });

  writeFileSync(path.join(started.dir, 'ok'), '');
  const kept = await slapos(['node', 'promise', '--cfg', cfg, '--only-cp', 'slappart0']);
  t.is(kept.exitCode, 0, kept.stderr);
  t.is((await slapos(['node', 'promise', '--cfg', cfg, '--only-cp', 'slappart9'])).exitCode, 1);
  t.false(existsSync(path.join(path.dirname(root), 'cp.pid')), 'the pid file is released');
});
