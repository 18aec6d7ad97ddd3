// slapos node report against our master: samples and instance report files
// reach it as TioXML; with the master down nothing is lost or sent twice;
// destruction with retention lock, prerm (real supervisord), sbin/destroy.
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCollect } from '../../src/accounting/collect.js';
import { runReport } from '../../src/accounting/report.js';
import { storePath, UsageStore } from '../../src/accounting/store.js';
import { validateJournal } from '../../src/accounting/tioxml.js';
import { SlapClient } from '../../src/slap/client.js';
import { ensureSupervisord } from '../../src/supervisor/daemon.js';
import { computer } from '../helpers/semantics-suite.js';
import { startTestMaster } from '../helpers/master.js';
import { createUser, isRoot, repoRoot } from '../helpers/system.js';
import { stopSupervisordAtTeardown } from '../supervisor/helpers.js';
import { log, makeNode } from './helpers.js';

const rootTest = isRoot ? test.serial : test.skip;
const SR = '/opt/sr/trivial/software.cfg';

function script(file: string, text: string, owner?: { uid: number; gid: number }): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `#!/bin/sh\n${text}\n`, { mode: 0o755 });
  if (owner) chownSync(file, owner.uid, owner.gid);
}

rootTest('report: samples and instance reports reach the master once; master down keeps them', async (t) => {
  const master = await startTestMaster(t, 'COMP-1234');
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer('COMP-1234', 2));
  await client.supplySupply(SR, 'COMP-1234');
  const instance = await client.requestComputerPartition(SR, 'inst0');
  t.is(instance.partitionId, 'slappart0');
  const user = createUser(t);
  const node = makeNode(t, [{ id: 'slappart0', user }, { id: 'slappart1' }]);
  const p0 = node.partitionPath('slappart0');
  script(path.join(p0, 'etc', 'report', 'usage'),
    'printf "<consumption><movement><resource>CPU</resource><title>work</title><reference>x</reference><quantity>$(id -u)</quantity><price>0</price><VAT></VAT></movement></consumption>" > "$1"');
  // An invalid file stays where it is; a symlink to a root-only file is never read.
  mkdirSync(path.join(p0, 'var', 'xml_report'), { recursive: true });
  writeFileSync(path.join(p0, 'var', 'xml_report', 'broken'), '<consumption/>');
  const t0 = 500 * 3600;
  await runCollect({ settings: node.settings, log, now: () => t0 + 10 });
  await runCollect({ settings: node.settings, log, now: () => t0 + 70 });
  const later = () => t0 + 3600 + 300;

  // Master down: everything queued locally, exit 1, files gone only because they are in the store.
  const down = new SlapClient('http://127.0.0.1:9/');
  t.teardown(() => down.close());
  const offline = await runReport({ settings: node.settings, client: down, log, now: later });
  t.is(offline.exitCode, 1);
  t.is(offline.summary.sent, 0);
  t.is((await master.store.transaction((tx) => tx.listUsage('COMP-1234'))).length, 0);
  // Without the master's partition list no script ran; the period is queued.
  t.is(offline.summary.periodsQueued, 1);
  t.is(offline.summary.pending, 1);

  // Master up: the script's file and the period are sent, once.
  const online = await runReport({ settings: node.settings, client, log, now: later });
  t.is(online.exitCode, 0, JSON.stringify(online.summary));
  t.is(online.summary.sent, 2);
  t.is(online.summary.ingested.partitionFiles, 1);
  t.deepEqual(readdirSync(path.join(p0, 'var', 'xml_report')), ['broken']);
  const again = await runReport({ settings: node.settings, client, log, now: later });
  t.is(again.summary.sent, 1, 'only the new report file of this run');
  const stored = await master.store.transaction((tx) => tx.listUsage('COMP-1234'));
  t.is(stored.length, 3);
  for (const row of stored) validateJournal(row.use_string);
  const period = stored.find((r) => r.use_string.includes('cpu_load_percent'))?.use_string ?? '';
  t.regex(period, new RegExp(`<start_date>${new Date(t0 * 1000).toISOString().slice(0, 10)}`));
  t.regex(period, /<reference>slappart1<\/reference>/);
  t.is(stored.filter((r) => r.use_string.includes('cpu_load_percent')).length, 1, 'the period is sent once');
  const files = stored.filter((r) => r.use_string.includes('<resource>CPU</resource>'));
  t.is(files.length, 2);
  t.regex(files[0]?.use_string ?? '', new RegExp(`<reference>slappart0</reference>\\s*<quantity>${user.uid}</quantity>`), 'the script ran as the partition user');

  // The CLI, as cron runs it (asynchronously: the master is in this process).
  const cfg = path.join(node.dir, 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\ncomputer_id = COMP-1234\nmaster_url = ${master.url}\ninstance_root = ${node.instanceRoot}\n` +
    `pidfile_report = ${node.dir}/ur.pid\n[slapformat]\ncgroup_parent = ${node.settings.cgroupParent}\n` +
    `computer_xml = ${node.dir}/slapos.xml\ncomputer_json = ${node.dir}/slapos.json\n`);
  const cli = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [path.join(repoRoot, 'bin', 'slapos.js'), ...args, '--cfg', cfg], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stdout, stderr }));
  });
  const collected = await cli(['node', 'collect', '--json']);
  t.is(collected.code, 0, collected.stderr);
  t.is((JSON.parse(collected.stdout) as { samples: unknown[] }).samples.length, 2);
  const reported = await cli(['node', 'report', '--now', '--json']);
  t.is(reported.code, 0, reported.stderr);
  t.is((JSON.parse(reported.stdout) as { sent: number }).sent, 1);
  // The hardware status collect wrote went with the usage (our master takes it; docs/master.md).
  t.is((JSON.parse(reported.stdout) as { hardware: string }).hardware, 'sent');
  const [hardware] = await master.store.read((tx) => tx.listHardware());
  t.like(JSON.parse(hardware?.document ?? '{}'), { schema: 'slapos-node/hardware-status/1', partitions: { count: 2 } });
  const status = await cli(['node', 'status', '--json']);
  t.is((JSON.parse(status.stdout) as { hardware: { partitions: { count: number } } }).hardware.partitions.count, 2);
  const store = new UsageStore(storePath(node.instanceRoot));
  // The in-process runs used a clock of 1970: their acknowledged rows are past retention now.
  t.deepEqual(store.outboxCounts(), { pending: 0, sent: 1, rejected: 0 });
  store.close();
});

rootTest('destruction: retention lock, then prerm (supervisord), sbin/destroy, wipe, cgroup reset, master told', async (t) => {
  const master = await startTestMaster(t, 'COMP-1234');
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer('COMP-1234', 3));
  await client.supplySupply(SR, 'COMP-1234');
  for (const title of ['inst0', 'inst1', 'inst2']) await client.requestComputerPartition(SR, title);
  for (const title of ['inst0', 'inst1']) await client.requestComputerPartition(SR, title, { state: 'destroyed' });
  const user = createUser(t);
  const other = createUser(t);
  const node = makeNode(t, [{ id: 'slappart0', user }, { id: 'slappart1', user: other }, { id: 'slappart2', user }], undefined, { prerm_wait: '10' });
  stopSupervisordAtTeardown(t, node.instanceRoot);
  const { paths } = await ensureSupervisord(node.instanceRoot, { log });
  const p0 = node.partitionPath('slappart0');
  const outside = path.join(node.dir, 'outside');
  mkdirSync(outside, { mode: 0o777 });
  chmodSync(outside, 0o777);
  // A running program of the partition, a prerm script, sbin/destroy, data, and a 1.7 s retention lock.
  script(path.join(p0, 'bin', 'daemon'), 'exec sleep 600', user);
  writeFileSync(path.join(paths.includeDir, 'slappart0.conf'),
    `[group:slappart0]\nprograms=slappart0_daemon\n[program:slappart0_daemon]\ncommand=${p0}/bin/daemon\nprocess_name=daemon\nuser=${user.uid}\nautostart=false\nstartsecs=0\nstopasgroup=true\nkillasgroup=true\n`);
  script(path.join(p0, 'etc', 'prerm', 'backup'), `sleep 0.5; id -u > ${outside}/prerm-ran`, user);
  // It leaves a background grandchild: the executor kills the whole tree.
  script(path.join(p0, 'sbin', 'destroy'), `sleep 1000 >/dev/null 2>&1 & echo $! > ${outside}/destroy-child; id -u > ${outside}/destroy-ran; test -f ${outside}/prerm-ran`, user);
  mkdirSync(path.join(p0, 'srv', 'deep'), { recursive: true });
  writeFileSync(path.join(p0, 'srv', 'deep', 'data'), 'x');
  writeFileSync(path.join(p0, '.slapos-retention-lock-delay'), '0.00002');
  const p1 = node.partitionPath('slappart1');
  script(path.join(p1, 'sbin', 'destroy'), 'exit 3', other); // fails: slappart0 is destroyed anyway
  const supervisor = { socket: paths.socket, includeDir: paths.includeDir };
  const { SupervisorClient } = await import('../../src/supervisor/client.js');
  const sv = new SupervisorClient(paths.socket);
  await sv.reloadConfig();
  await sv.addProcessGroup('slappart0');
  await sv.startProcessGroup('slappart0');
  const pid = (await sv.getProcessInfo('slappart0:daemon')).pid;
  node.tree.addProcess('slappart0', pid);

  const first = await runReport({ settings: node.settings, client, log, supervisor });
  t.deepEqual(first.summary.locked, ['slappart0']);
  t.is(first.summary.destroyFailures[0]?.partition, 'slappart1');
  t.regex(first.summary.destroyFailures[0]?.error ?? '', /cannot destroy slappart1: sbin\/destroy: exit 3/);
  t.is(first.exitCode, 1);
  t.true(existsSync(path.join(p0, '.slapos-retention-lock-date')));
  t.false(existsSync(path.join(outside, 'prerm-ran')), 'prerm waits for the retention lock');
  t.is((await sv.getAllProcessInfo()).filter((p) => p.group === 'slappart0').length, 0, 'processes stopped at once');
  await new Promise((r) => setTimeout(r, 1900));

  const second = await runReport({ settings: node.settings, client, log, supervisor });
  t.deepEqual(second.summary.destroyed, ['slappart0'], JSON.stringify(second.summary));
  t.is(readFileSync(path.join(outside, 'prerm-ran'), 'utf8').trim(), String(user.uid));
  t.is(readFileSync(path.join(outside, 'destroy-ran'), 'utf8').trim(), String(user.uid));
  const child = Number(readFileSync(path.join(outside, 'destroy-child'), 'utf8'));
  const childState = (() => {
    try {
      const stat = readFileSync(`/proc/${child}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    } catch {
      return 'gone';
    }
  })();
  t.true(childState === 'gone' || childState === 'Z', `the background child of sbin/destroy (${child}) is ${childState}`);
  t.deepEqual(readdirSync(p0), ['.slapos-resource']);
  const st = statSync(p0);
  t.is(st.uid, user.uid);
  t.is(st.mode & 0o777, 0o750);
  t.deepEqual(readdirSync(paths.includeDir).filter((f) => f.startsWith('slappart0')), []);
  t.true(node.tree.exists('slappart0'));
  t.deepEqual(node.tree.processes('slappart0'), []);
  t.is(node.tree.usage('slappart0').cpuUsec, 0, 'counters start again from zero');
  const row = await master.store.transaction((tx) => tx.getPartition('COMP-1234', 'slappart0'));
  t.is(row?.slap_state, 'free', 'destroyedComputerPartition freed it');
  t.true(existsSync(path.join(node.partitionPath('slappart2'))), 'a started partition is left alone');
});
