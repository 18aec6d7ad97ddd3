// The watchdog under a real supervisord: a watched service (`-on-watch`)
// that exits bangs its partition once; an etc/run process never does.
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { SupervisorClient } from '../../src/supervisor/client.js';
import { watchdogCommand } from '../../src/supervisor/config.js';
import { ensureSupervisord } from '../../src/supervisor/daemon.js';
import { isRoot } from '../helpers/system.js';
import { stopSupervisordAtTeardown } from '../supervisor/helpers.js';
import { COMPUTER, createPartition, startRecordingMaster, waitFor, writeScript } from './helpers.js';

const log = pino({ level: 'silent' });
const rootTest = isRoot ? test.serial : test.skip;

function program(group: string, name: string, processName: string, command: string, dir: string, uid: number): string {
  return (
    `[program:${group}_${name}]\ndirectory = ${dir}\ncommand = ${command}\nprocess_name = ${processName}\n` +
    'autostart = false\nautorestart = false\nstartsecs = 0\nstartretries = 0\nexitcodes = 0\nstopsignal = TERM\n' +
    `stopwaitsecs = 10\nstopasgroup = true\nkillasgroup = true\nuser = ${uid}\nredirect_stderr = true\n` +
    `stdout_logfile = ${dir}/.${group}_${name}.log\n\n`
  );
}

rootTest('a watched service that exits bangs its partition once; an etc/run process does not', async (t) => {
  const master = await startRecordingMaster(t);
  const p = createPartition(t);
  stopSupervisordAtTeardown(t, p.instanceRoot);
  const deployed = await master.timestamp(p.id);
  t.truthy(deployed);
  writeFileSync(path.join(p.dir, '.timestamp'), String(deployed));
  writeScript(path.join(p.dir, 'etc', 'service', 'svc'), 'sleep 0.3; exit 0');
  writeScript(path.join(p.dir, 'etc', 'run', 'runner'), 'exit 0');
  const cfg = path.join(path.dirname(p.instanceRoot), 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\nmaster_url = ${master.url}\ncomputer_id = ${COMPUTER}\ninstance_root = ${p.instanceRoot}\n`);

  // A supervisord started without the listener gets it from the next ensureSupervisord (§7.2).
  t.true((await ensureSupervisord(p.instanceRoot, { log })).started);
  const { paths, started } = await ensureSupervisord(p.instanceRoot, { log, watchdogCommand: watchdogCommand(cfg) });
  t.false(started);
  t.regex(readFileSync(paths.config, 'utf8'), /\[eventlistener:watchdog\]\ncommand = \S+ \S+slapos-watchdog\.js --cfg \S+slapos\.cfg\nevents = PROCESS_STATE_EXITED, PROCESS_STATE_FATAL\n/);
  const client = new SupervisorClient(paths.socket);
  await waitFor('the watchdog', async () => (await client.getProcessInfo('watchdog')).statename === 'RUNNING');
  writeFileSync(
    path.join(paths.includeDir, `${p.id}.conf`),
    `[group:${p.id}]\nprograms = ${p.id}_svc,${p.id}_runner\n\n` +
      program(p.id, 'svc', 'svc-on-watch', path.join(p.dir, 'etc', 'service', 'svc'), p.dir, p.user.uid) +
      program(p.id, 'runner', 'runner', path.join(p.dir, 'etc', 'run', 'runner'), p.dir, p.user.uid),
    { mode: 0o600 },
  );
  await client.reloadConfig();
  await client.addProcessGroup(p.id);
  const exited = (name: string) => async () => (await client.getProcessInfo(`${p.id}:${name}`)).statename === 'EXITED';
  const bangs = () => master.calls('softwareInstanceBang');

  await client.startProcess(`${p.id}:runner`, false);
  await waitFor('runner to exit', exited('runner'));
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  t.is(bangs().length, 0, 'an etc/run process exiting does not bang');

  await client.startProcess(`${p.id}:svc-on-watch`, false);
  await waitFor('the bang', () => bangs().length > 0);
  t.like(bangs()[0]?.body, { computer_id: COMPUTER, computer_partition_id: p.id, message: `svc-on-watch process in partition ${p.id} encountered a problem` });
  await waitFor('the bang file', () => {
    try {
      return readFileSync(path.join(p.dir, '.slapos_latest_bang_timestamp'), 'utf8') === String(deployed);
    } catch {
      return false;
    }
  });
  t.not(await master.timestamp(p.id), deployed, "the master bumped the partition's tree");

  // Exits again before the partition was redeployed: no second bang.
  await client.startProcess(`${p.id}:svc-on-watch`, false);
  await waitFor('svc to exit again', exited('svc-on-watch'));
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  t.is(bangs().length, 1, 'one bang, not two');
});
