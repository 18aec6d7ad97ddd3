// The watchdog event listener stays configured in supervisord: after a
// destruction by `node report`, after a routine `node instance` pass with
// nothing to do, and after an offline `node instance --cfg OTHER` (the next
// normal pass points it back at the node's own configuration).
import test, { type ExecutionContext } from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SupervisorClient } from '../../src/supervisor/client.js';
import { isRoot } from '../helpers/system.js';
import { cli, nodeEnv, releaseByHand, type NodeEnv } from './env.js';

const rootTest = isRoot ? test.serial : test.skip;

/** The watchdog as configured (supervisord.conf) and as running (its command line), for `cfg`. */
async function assertWatchdog(t: ExecutionContext, env: NodeEnv, cfg: string, when: string): Promise<void> {
  const conf = readFileSync(path.join(env.instanceRoot, 'etc', 'supervisord.conf'), 'utf8');
  t.regex(conf, /^\[eventlistener:watchdog\]$/m, `${when}: in supervisord.conf`);
  t.true(conf.includes(` --cfg ${cfg}\n`), `${when}: supervisord.conf's watchdog reads ${cfg}`);
  const client = new SupervisorClient(path.join(env.instanceRoot, 'sv.sock'));
  let info = await client.getProcessInfo('watchdog');
  for (let i = 0; i < 50 && info.statename === 'STARTING'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    info = await client.getProcessInfo('watchdog');
  }
  t.is(info.statename, 'RUNNING', `${when}: running in supervisord`);
  const cmdline = readFileSync(`/proc/${info.pid}/cmdline`, 'utf8').split('\0');
  t.is(cmdline[cmdline.indexOf('--cfg') + 1], cfg, `${when}: the running watchdog reads ${cfg}`);
}

rootTest('the watchdog survives a destruction by node report, a routine instance pass and an offline run with another --cfg', async (t) => {
  const env = await nodeEnv(t, 2);
  const { client, computerId, cfg } = env;
  // A release built by hand (instance profile without parts): `node instance` deploys it with the node's buildout.
  const release = releaseByHand(env, 'empty', '[buildout]\nparts =\n');
  await client.supplySupply(release, computerId);
  await client.requestComputerPartition(release, 'w0').catch(() => undefined);

  const instance = async (file = cfg) => {
    const result = await cli(file, ['node', 'instance', '--now', '--json']);
    return { ...result, summary: JSON.parse(result.stdout || '{}') as { processed?: string[]; upToDate?: string[]; offline?: boolean } };
  };
  const first = await instance();
  t.is(first.status, 0, first.stderr);
  t.is(first.summary.processed?.length, 1);
  await assertWatchdog(t, env, cfg, 'after the first pass');

  await client.requestComputerPartition(release, 'w0', { state: 'destroyed' });
  const destroyPass = await instance(); // stops it and reports it stopped, as the reference
  t.true([0, 1].includes(destroyPass.status ?? -1), destroyPass.stderr);
  const report = await cli(cfg, ['node', 'report', '--now', '--json']);
  t.is(report.status, 0, report.stderr);
  t.is((JSON.parse(report.stdout) as { destroyed: string[] }).destroyed.length, 1, report.stdout);
  await assertWatchdog(t, env, cfg, 'after node report destroyed the partition');

  // A watchdog lost another way (as an older node's destruction did): the routine pass restores it.
  const confFile = path.join(env.instanceRoot, 'etc', 'supervisord.conf');
  writeFileSync(confFile, readFileSync(confFile, 'utf8').replace(/\[eventlistener:watchdog\][^[]*/, ''));
  const sv = new SupervisorClient(path.join(env.instanceRoot, 'sv.sock'));
  await sv.stopProcessGroup('watchdog');
  await sv.removeProcessGroup('watchdog');
  await t.throwsAsync(sv.getProcessInfo('watchdog'));
  const routine = await instance();
  t.is(routine.status, 0, routine.stderr);
  t.deepEqual(routine.summary.processed, []);
  await assertWatchdog(t, env, cfg, 'after a routine pass');

  // Another configuration whose master cannot be reached: an offline pass.
  const other = path.join(env.dir, 'other.cfg');
  writeFileSync(other, readFileSync(cfg, 'utf8').replace(/^master_url = .*$/m, 'master_url = http://127.0.0.1:9'));
  const offline = await instance(other);
  t.true(offline.summary.offline, offline.stderr);
  const next = await instance();
  t.is(next.status, 0, next.stderr);
  await assertWatchdog(t, env, cfg, 'after an offline run with another --cfg, then a normal pass');
});
