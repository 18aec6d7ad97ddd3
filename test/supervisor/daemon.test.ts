// The node's real supervisord (Debian's), driven over its unix socket.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { SupervisorClient, SupervisorFault } from '../../src/supervisor/client.js';
import { ensureSupervisord } from '../../src/supervisor/daemon.js';
import { createUser, isRoot, repoRoot, tempDir } from '../helpers/system.js';
import { stopSupervisordAtTeardown } from './helpers.js';

const log = pino({ level: 'silent' });
const rootTest = isRoot ? test.serial : test.skip;

const slapos = (args: string[]) =>
  spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'slapos.js'), ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH },
    timeout: 60_000,
  });

rootTest('the node starts supervisord once and runs a group as an unprivileged user', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const instanceRoot = path.join(dir, 'srv');
  spawnSync('mkdir', [instanceRoot]);
  stopSupervisordAtTeardown(t, instanceRoot);
  const user = createUser(t);

  const first = await ensureSupervisord(instanceRoot, { log });
  t.true(first.started);
  t.is(first.paths.socket, path.join(instanceRoot, 'sv.sock'));
  t.is(statSync(first.paths.config).mode & 0o777, 0o600);
  const pid = Number(readFileSync(first.paths.pidFile, 'utf8'));
  const second = await ensureSupervisord(instanceRoot, { log });
  t.false(second.started);

  // The CLI does not start a second one either.
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\ninstance_root = ${instanceRoot}\n`);
  const cli = slapos(['node', 'supervisord', '--cfg', cfg]);
  t.is(cli.status, 0, cli.stderr);
  t.regex(cli.stdout, /already running/);
  t.is(Number(readFileSync(first.paths.pidFile, 'utf8')), pid);

  const client = new SupervisorClient(first.paths.socket);
  t.deepEqual(await client.getState(), { statecode: 1, statename: 'RUNNING' });
  const group = 'slt0';
  writeFileSync(
    path.join(first.paths.includeDir, `${group}.conf`),
    `[group:${group}]\nprograms = ${group}_sleeper\n\n[program:${group}_sleeper]\n` +
      `directory = ${dir}\ncommand = /bin/sleep 300\nprocess_name = sleeper\nautostart = false\nautorestart = false\n` +
      `startsecs = 0\nstartretries = 0\nexitcodes = 0\nstopsignal = TERM\nstopwaitsecs = 10\n` +
      `stopasgroup = true\nkillasgroup = true\nuser = ${user.uid}\nredirect_stderr = true\n` +
      `stdout_logfile = ${dir}/.${group}_sleeper.log\nenvironment = USER="${user.name}",HOME="${dir}"\n`,
    { mode: 0o600 },
  );
  t.deepEqual(await client.reloadConfig(), { added: [group], changed: [], removed: [] });
  t.true(await client.addProcessGroup(group));
  const started = await client.startProcessGroup(group, true);
  t.deepEqual(started.map((s) => [s.name, s.status]), [['sleeper', 80]]);
  const info = await client.getProcessInfo(`${group}:sleeper`);
  t.is(info.statename, 'RUNNING');
  // With startsecs = 0, RUNNING can be reported between supervisord's fork and
  // the child's setuid + exec: wait for the exec before reading the owner.
  let status = '';
  for (let i = 0; i < 100; i++) {
    status = readFileSync(`/proc/${info.pid}/status`, 'utf8');
    if (/^Name:\s+sleep$/m.test(status)) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.regex(status, /^Name:\s+sleep$/m);
  t.regex(status, new RegExp(`\\nUid:\\s+${user.uid}\\s`));

  const json = slapos(['node', 'status', '--json', '--cfg', cfg]);
  t.is(json.status, 0, json.stderr);
  const shown = JSON.parse(json.stdout) as { processes: { processes: { group: string; name: string; state: string }[] } };
  t.deepEqual(shown.processes.processes.map((p) => [p.group, p.name, p.state]), [[group, 'sleeper', 'RUNNING']]);
  const text = slapos(['node', 'status', '--cfg', cfg]);
  t.regex(text.stdout, /slt0:sleeper\s+RUNNING/);
  t.regex(text.stdout, /^hardware: not collected yet/m);

  // As another user: the socket (0700) and a partition directory (0750) cannot
  // be read; status says so and fails instead of "not running, no partitions".
  const partition = path.join(instanceRoot, 'slappart0');
  spawnSync('mkdir', ['-m', '0750', partition]);
  writeFileSync(path.join(partition, '.slapos-resource'), '{}');
  const asUser = spawnSync('setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups',
    process.execPath, path.join(repoRoot, 'bin', 'slapos.js'), 'node', 'status', '--cfg', cfg], { encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 60_000 });
  t.is(asUser.status, 1, asUser.stdout + asUser.stderr);
  t.regex(asUser.stderr, /could not read supervisord \(permission denied on .*sv\.sock\) and partition directory slappart0 \(permission denied\); run it as root/);
  t.regex(asUser.stdout, /^supervisord: unknown, could not read it/m);
  t.notRegex(asUser.stdout, /not running/);
  const ctl = slapos(['node', 'supervisorctl', '--cfg', cfg, 'status']);
  t.regex(ctl.stdout, /slt0:sleeper\s+RUNNING/);

  await t.throwsAsync(client.removeProcessGroup(group), { instanceOf: SupervisorFault, message: /STILL_RUNNING|still/i });
  const stopped = await client.stopProcessGroup(group, true);
  t.deepEqual(stopped.map((s) => s.status), [80]);
  t.is((await client.getProcessInfo(`${group}:sleeper`)).statename, 'STOPPED');
  t.true(await client.removeProcessGroup(group));
  t.deepEqual(await client.getAllProcessInfo(), []);
  const fault = await t.throwsAsync(client.startProcessGroup('nope'), { instanceOf: SupervisorFault });
  t.is(fault?.faultName, 'BAD_NAME');
});
