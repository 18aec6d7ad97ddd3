// Stateless rebuild: a node we formatted runs an instance; every local state
// file of ours is deleted (format's state, the partitions' records, the
// instance loop's state and digests, supervisord's generated configuration),
// the partitions' contents are kept. `node format` then `node instance`
// rebuild the same users, uids, addresses and routes, and the service answers
// again on the same addresses with the same connection parameters.
import test from 'ava';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { PyRecord } from '../../src/slap/pyvalue.js';
import { instanceXmlToDict } from '../../src/slap/instance-xml.js';
import { isRoot, repoRoot, run } from '../helpers/system.js';
import { formatCli } from '../helpers/format.js';
import { diffStates, snapshotNode } from '../helpers/node-snapshot.js';
import { cli, fetchInNetns, nodeEnv, startSupervisordInNetns, stopSupervisord, type NodeEnv } from '../instance/env.js';

const rootTest = isRoot ? test.serial : test.skip;
const EXAMPLE = path.join(repoRoot, 'examples', 'hello-http', 'software.cfg');

/** Every local state file of ours, as listed in docs/operations.md ("Rebuilding a node that lost its state"). */
export function localStateFiles(env: NodeEnv): string[] {
  const files = [path.join(env.dir, 'slapos.xml'), path.join(env.dir, 'slapos.json'), path.join(env.dir, 'slapos.xml.reported.json'), path.join(env.instanceRoot, 'var', 'instance-partitions.json')];
  const confd = path.join(env.instanceRoot, 'etc', 'supervisord.conf.d');
  if (existsSync(confd)) files.push(...readdirSync(confd).map((f) => path.join(confd, f)));
  files.push(path.join(env.instanceRoot, 'etc', 'supervisord.conf'));
  for (const entry of readdirSync(env.instanceRoot)) {
    if (!entry.startsWith(`${env.prefix}p`)) continue;
    const dir = path.join(env.instanceRoot, entry);
    files.push(...['.slapos-resource', '.slapos-instance.json', '.timestamp', path.join('.slapgrid', 'state.json')].map((f) => path.join(dir, f)));
  }
  return files.filter((f) => existsSync(f));
}

async function answers(env: NodeEnv, url: string, title: string): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (fetchInNetns(env.netns, url).body.includes(`Hello from ${title}`)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

function startSupervisord(env: NodeEnv): void {
  startSupervisordInNetns(env);
}

rootTest('stateless rebuild: state files deleted, format then instance bring back the same partitions, uids, addresses, routes, service and connection parameters', async (t) => {
  const env = await nodeEnv(t, 2);
  const node = { netns: env.netns, dir: env.dir, users: [], groups: [], placeholders: [] as [string, string][] };
  const ours = (name: string) => name.startsWith(env.prefix);
  const uids = () => run('getent', ['passwd']).split('\n').filter((l) => ours(l.split(':')[0] ?? '')).sort();

  await env.client.supplySupply(EXAMPLE, env.computerId);
  t.is((await cli(env.cfg, ['node', 'software', '--now'])).status, 0);
  const requested = await env.client.requestComputerPartition(EXAMPLE, 'inst0', { parameters: { foo: 'bar' } }).catch(() => undefined);
  const id = requested?.partitionId as string;
  t.truthy(id);
  const first = await cli(env.cfg, ['node', 'instance', '--now']);
  t.is(first.status, 0, first.stderr);
  const conf = JSON.parse(readFileSync(path.join(env.instanceRoot, id, '.slapos-instance.json'), 'utf8')) as { 'ipv4-random': string; 'ipv6-random': string };
  const urls = [`http://${conf['ipv4-random']}:8080/`, `http://[${conf['ipv6-random']}]:8080/`];
  for (const url of urls) t.true(await answers(env, url, 'inst0'), url);
  const connection = async () => instanceXmlToDict((await env.master.store.transaction((tx) => tx.getPartition(env.computerId, id)))?.connection_xml);
  const connectionBefore = await connection();
  t.is(connectionBefore['url-ipv4'], urls[0]);
  const before = await snapshotNode(node, ours, { files: false });
  const uidsBefore = uids();
  const resourceBefore = readFileSync(path.join(env.instanceRoot, id, '.slapos-resource'), 'utf8');

  // The state is lost (and the machine restarted: supervisord and its services are gone).
  await stopSupervisord(env.instanceRoot);
  const lost = localStateFiles(env);
  t.true(lost.length >= 10, lost.join('\n'));
  t.log(lost.map((f) => path.relative(env.dir, f)).join(' '));
  for (const file of lost) rmSync(file);
  for (const url of urls) t.false(fetchInNetns(env.netns, url).body.includes('Hello'), `${url} is down`);

  // format: nothing destructive planned, the same partitions rebuilt.
  const dry = await formatCli(env, ['--dry-run', '--json']);
  const steps = (JSON.parse(dry.stdout) as { steps: { kind: string }[] }).steps;
  t.deepEqual(steps.filter((s) => !['write-file'].includes(s.kind)), [], 'only the state files are written again');
  const formatted = await formatCli(env, []);
  t.true(formatted.status === 0 || formatted.status === 2, formatted.stderr); // the master is on the host: reported below
  t.is(readFileSync(path.join(env.instanceRoot, id, '.slapos-resource'), 'utf8'), resourceBefore);
  await env.client.loadComputerConfigurationFromXML(JSON.parse(readFileSync(path.join(env.dir, 'slapos.json'), 'utf8')) as PyRecord);

  // instance: the service is back on the same addresses, with the same connection parameters.
  startSupervisord(env);
  const second = await cli(env.cfg, ['node', 'instance', '--now']);
  t.is(second.status, 0, second.stderr);
  for (const url of urls) t.true(await answers(env, url, 'inst0'), url);
  t.deepEqual(await connection(), connectionBefore);
  t.deepEqual(uids(), uidsBefore, 'same users with the same uids, gids, homes');
  t.deepEqual(diffStates(before, await snapshotNode(node, ours, { files: false })), [], 'same links, addresses, routes, sysctls, users and groups');
});
