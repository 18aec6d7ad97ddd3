// `slapos node instance` end to end: a formatted node in a namespace, our
// master, real buildout, real supervisord. One scenario, in order, because
// building the example release dominates the cost.
import test from 'ava';
import { chownSync, existsSync, lstatSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { instanceXmlToDict } from '../../src/slap/instance-xml.js';
import { SupervisorClient } from '../../src/supervisor/client.js';
import { isRoot, repoRoot, tempDir } from '../helpers/system.js';
import { cli, fetchInNetns, instancePass, nodeEnv, releaseByHand, setKey } from './env.js';

const rootTest = isRoot ? test.serial : test.skip;
const EXAMPLE = path.join(repoRoot, 'examples', 'hello-http', 'software.cfg');

rootTest('request → software → instance: services answer as partition users; skip, change, failure with backoff, stop/start, offline', async (t) => {
  // --log-file of the node's passes and the master's lines: filtered below as docs/operations.md's jq filters do.
  const logs = tempDir(t);
  const masterLog = path.join(logs, 'master.jsonl');
  const nodeLog = path.join(logs, 'node.jsonl');
  const env = await nodeEnv(t, 3, { masterLog });
  const { client, computerId, cfg } = env;
  // A release whose instance profile is broken: built by hand, so `node software` finds it complete.
  const broken = releaseByHand(env, 'broken', '[buildout]\nparts = nope\n[nope]\nrecipe = no.such.recipe\n');

  await client.supplySupply(EXAMPLE, computerId);
  await client.supplySupply(broken, computerId);
  const sw = await cli(cfg, ['node', 'software', '--now', '--log-file', nodeLog]);
  t.is(sw.status, 0, sw.stderr);

  const inst0 = await client.requestComputerPartition(EXAMPLE, 'inst0', { parameters: { foo: 'bar' } }).catch(() => undefined);
  const inst1 = await client.requestComputerPartition(EXAMPLE, 'inst1').catch(() => undefined);
  const bad = await client.requestComputerPartition(broken, 'bad').catch(() => undefined);
  t.truthy(inst0 && inst1 && bad);
  const ids = { inst0: inst0!.partitionId!, inst1: inst1!.partitionId!, bad: bad!.partitionId! };

  const run = (...args: string[]) => instancePass(cfg, ...args);

  // First pass: both hello-http instances deployed, the broken one fails without stopping them.
  const first = await run('--log-file', nodeLog);
  t.is(first.status, 1, first.stderr);
  t.deepEqual(first.summary?.processed.sort(), [ids.inst0, ids.inst1].sort(), first.stderr.slice(-3000));
  t.deepEqual(first.summary?.failed.map((f) => f.id), [ids.bad]);
  t.regex(first.summary?.failed[0]?.error ?? '', /Failed to run buildout[\s\S]*no\.such\.recipe/);

  const socket = path.join(env.instanceRoot, 'sv.sock');
  const supervisor = new SupervisorClient(socket);
  for (const title of ['inst0', 'inst1'] as const) {
    const id = ids[title];
    const dir = path.join(env.instanceRoot, id);
    const conf = JSON.parse(readFileSync(path.join(dir, '.slapos-instance.json'), 'utf8')) as { 'ipv4-random': string; 'ipv6-random': string; parameters: Record<string, string> };
    t.truthy(conf['ipv4-random']);
    t.truthy(conf['ipv6-random']);
    if (title === 'inst0') t.deepEqual(conf.parameters, { foo: 'bar' });
    t.true(lstatSync(path.join(dir, 'software_release')).isSymbolicLink());
    t.true(existsSync(path.join(dir, '.timestamp')));
    t.regex(readFileSync(path.join(dir, '.slapgrid', 'log', 'instance.log'), 'utf8'), /Processing Computer Partition/);
    const conffile = readFileSync(path.join(env.instanceRoot, 'etc', 'supervisord.conf.d', `${id}.conf`), 'utf8');
    t.regex(conffile, new RegExp(`process_name = hello-http-on-watch`));
    // The service answers on both addresses of its partition.
    for (const url of [`http://${conf['ipv4-random']}:8080/`, `http://[${conf['ipv6-random']}]:8080/`]) {
      let answer = fetchInNetns(env.netns, url);
      for (let i = 0; i < 30 && !answer.body.includes('Hello'); i++) {
        await new Promise((r) => setTimeout(r, 200));
        answer = fetchInNetns(env.netns, url);
      }
      t.regex(answer.body, new RegExp(`Hello from ${title}`), url);
    }
    // As the partition user.
    const info = await supervisor.getProcessInfo(`${id}:hello-http-on-watch`);
    t.is(info.statename, 'RUNNING');
    const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${info.pid}/status`, 'utf8'))?.[1]);
    t.is(uid, statSync(dir).uid);
    // In the partition's cgroup, so its usage is accounted and its limits apply.
    t.regex(readFileSync(`/proc/${info.pid}/cgroup`, 'utf8'), new RegExp(`/${env.cgroupParent}/${id}$`, 'm'));
    // Connection parameters reached the master.
    const row = await env.master.store.transaction((tx) => tx.getPartition(computerId, id));
    const connection = instanceXmlToDict(row?.connection_xml);
    t.is(connection['url-ipv4'], `http://${conf['ipv4-random']}:8080/`);
    t.is(row?.reported_state, 'started');
    // The release's promise ran as the partition user and passed; its result is where the reference keeps it.
    const result = path.join(dir, '.slapgrid', 'promise', 'result', 'hello-http-listening.status.json');
    const promise = JSON.parse(readFileSync(result, 'utf8')) as { name: string; result: { failed: boolean } };
    t.is(promise.name, 'hello-http-listening');
    t.false(promise.result.failed);
    t.is(statSync(result).uid, statSync(dir).uid);
  }
  // jq 'select(.computer == C and .partition == P)' on the node's and the master's --log-file lines.
  const jsonLines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const nodeLines = jsonLines(nodeLog);
  t.true(nodeLines.every((l) => l.computer === computerId), 'every node line names the computer');
  t.true(nodeLines.some((l) => l.software_release === EXAMPLE), 'the software pass names its release');
  const inst0Lines = nodeLines.filter((l) => l.computer === computerId && l.partition === ids.inst0);
  t.true(inst0Lines.length > 0 && !inst0Lines.some((l) => l.partition === ids.inst1));
  t.true(nodeLines.some((l) => l.partition === ids.bad && typeof l.code === 'string'), 'the failure has its code');
  const requests = jsonLines(masterLog).filter((l) => l.msg === 'request');
  t.true(requests.some((l) => l.computer === computerId && l.route === '/getFullComputerInformation'));
  t.true(requests.some((l) => l.computer === computerId && l.partition === ids.inst0), 'a request about inst0\'s partition');
  const badRow = await env.master.store.transaction((tx) => tx.getPartition(computerId, ids.bad));
  t.is(badRow?.reported_state, 'error');
  t.regex(badRow?.error_log ?? '', /no\.such\.recipe/);
  t.false(existsSync(path.join(env.instanceRoot, ids.bad, '.timestamp')));
  t.true(existsSync(path.join(env.instanceRoot, ids.bad, `.slapgrid-${ids.bad}-error.log`)));

  // Second pass: nothing to do; the broken one backs off (not retried).
  const second = await run();
  t.is(second.status, 1, second.stderr);
  t.deepEqual(second.summary?.processed, []);
  t.deepEqual(second.summary?.upToDate.sort(), [ids.inst0, ids.inst1].sort());
  t.is(second.summary?.failed[0]?.backingOff, true);
  const status = await cli(cfg, ['node', 'status', '--json']);
  const parts = (JSON.parse(status.stdout) as { partitions: { id: string; backoff: { failures: number; backingOff: boolean } | null }[] }).partitions;
  t.deepEqual(parts.find((p) => p.id === ids.bad)?.backoff?.backingOff, true);
  t.is(parts.find((p) => p.id === ids.inst0)?.backoff, null);

  // A parameter change re-runs only that partition.
  await client.requestComputerPartition(EXAMPLE, 'inst1', { parameters: { greeting: 'changed' } });
  const third = await run();
  t.deepEqual(third.summary?.processed, [ids.inst1]);

  // Stop, then start again.
  await client.requestComputerPartition(EXAMPLE, 'inst0', { parameters: { foo: 'bar' }, state: 'stopped' });
  const stopped = await run();
  t.deepEqual(stopped.summary?.processed, [ids.inst0]);
  t.false(existsSync(path.join(env.instanceRoot, 'etc', 'supervisord.conf.d', `${ids.inst0}.conf`)));
  const names = (await supervisor.getAllProcessInfo()).map((p) => p.group);
  t.false(names.includes(ids.inst0));
  t.is((await env.master.store.transaction((tx) => tx.getPartition(computerId, ids.inst0)))?.reported_state, 'stopped');
  await client.requestComputerPartition(EXAMPLE, 'inst0', { parameters: { foo: 'bar' }, state: 'started' });
  const restarted = await run();
  t.deepEqual(restarted.summary?.processed, [ids.inst0]);
  t.is((await supervisor.getProcessInfo(`${ids.inst0}:hello-http-on-watch`)).statename, 'RUNNING');

  // A failing promise blocks "started": the error reaches the master, exit 2; once it passes, started again.
  const failing = path.join(env.instanceRoot, ids.inst0, 'etc', 'promise', 'always-fails');
  writeFileSync(failing, '#!/bin/sh\necho "the disk is on fire" >&2\nexit 1\n', { mode: 0o755 });
  const owner = statSync(path.join(env.instanceRoot, ids.inst0));
  chownSync(failing, owner.uid, owner.gid);
  await client.requestComputerPartition(EXAMPLE, 'inst0', { parameters: { foo: 'promise' } });
  const broken1 = await run('--only-cp', ids.inst0); // alone: the backing-off partition would make it exit 1
  t.is(broken1.status, 2, broken1.stderr);
  t.deepEqual(broken1.summary?.promiseFailed.map((f) => f.id), [ids.inst0]);
  const errored = await env.master.store.transaction((tx) => tx.getPartition(computerId, ids.inst0));
  t.is(errored?.reported_state, 'error');
  t.regex(errored?.error_log ?? '', /always-fails[\s\S]*the disk is on fire/);
  rmSync(failing);
  const fixed = await run('--only-cp', ids.inst0);
  t.is(fixed.status, 0, fixed.stderr);
  t.deepEqual(fixed.summary?.processed, [ids.inst0]);
  t.is((await env.master.store.transaction((tx) => tx.getPartition(computerId, ids.inst0)))?.reported_state, 'started');

  // --only-cp with an unknown id fails clearly, and --only-cp retries a backing-off partition at once.
  const unknown = await run('--only-cp', 'nope,other');
  t.is(unknown.status, 1);
  t.regex(unknown.stderr, /Unknown partitions: nope, other/);
  const retried = await run('--only-cp', ids.bad);
  t.is(retried.status, 1);
  t.deepEqual(retried.summary?.failed.map((f) => [f.id, f.backingOff ?? false]), [[ids.bad, false]]);

  // Master down: every known process (re)started, exit 3.
  await supervisor.stopProcessGroup(ids.inst1);
  setKey(cfg, 'master_url', 'http://127.0.0.1:9/');
  const offline = await run();
  t.is(offline.status, 3, offline.stderr);
  t.true(offline.summary?.offline);
  t.is((await supervisor.getProcessInfo(`${ids.inst1}:hello-http-on-watch`)).statename, 'RUNNING');
  t.is((await supervisor.getProcessInfo(`${ids.inst0}:hello-http-on-watch`)).statename, 'RUNNING');
});
