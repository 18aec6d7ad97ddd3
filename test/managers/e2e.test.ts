// The managers through the real loops: `slapos node instance` applies a
// partition's whitelist and port redirection (nftables of the test's
// namespace, through [firewall] nft_cmd), `slapos node status --json` shows
// them, `slapos node report` removes them with the partition.
import test from 'ava';
import { appendFileSync, chownSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { isRoot, run } from '../helpers/system.js';
import { cli, nodeEnv, releaseByHand, setKey } from '../instance/env.js';

const NFT = '/usr/sbin/nft';
const rootTest = isRoot && spawnSync(NFT, ['--version']).status === 0 ? test.serial : test.skip;

rootTest('node instance applies the managers, node status shows them, node report removes them with the partition', async (t) => {
  const env = await nodeEnv(t, 1);
  const { client, computerId, cfg } = env;
  const release = releaseByHand(env, 'empty', '[buildout]\nparts =\n');
  await client.supplySupply(release, computerId);
  const requested = await client.requestComputerPartition(release, 'm0').catch(() => undefined);
  const id = requested?.partitionId ?? 'slappart0';
  setKey(cfg, 'manager_list', 'portredir whitelistfirewall');
  appendFileSync(cfg, `\n[firewall]\nnft_cmd = ip netns exec ${env.netns} ${NFT}\n`);

  // The partition writes its requests, as the reference's releases do (json.dumps of a list).
  const dir = path.join(env.instanceRoot, id);
  const owner = statSync(dir);
  const write = (name: string, value: unknown) => {
    writeFileSync(path.join(dir, name), JSON.stringify(value));
    chownSync(path.join(dir, name), owner.uid, owner.gid);
  };
  write('.slapos-whitelist-firewall', ['192.0.2.1']);
  write('.slapos-port-redirect', [{ srcPort: 80, destPort: 8080 }]); // privileged: refused

  const first = await cli(cfg, ['node', 'instance', '--now', '--json']);
  t.is(first.status, 0, first.stderr);
  const table = () => run('ip', ['netns', 'exec', env.netns, NFT, 'list', 'table', 'inet', 'slapos']);
  t.regex(table(), new RegExp(`${owner.uid} : jump wl_${id}`));
  t.regex(table(), /ip daddr 192\.0\.2\.1 accept/);

  const status = await cli(cfg, ['node', 'status', '--json']);
  const managers = (JSON.parse(status.stdout) as { managers: { enabled: string[]; partitions: { partition: string; whitelistfirewall?: { addresses: string[] }; refused: { manager: string; reason: string }[] }[] } }).managers;
  t.deepEqual(managers.enabled, ['portredir', 'whitelistfirewall']);
  const mine = managers.partitions.find((p) => p.partition === id);
  t.deepEqual(mine?.whitelistfirewall?.addresses, ['192.0.2.1']);
  t.regex(mine?.refused.find((r) => r.manager === 'portredir')?.reason ?? '', /privileged/);
  const text = await cli(cfg, ['node', 'status']);
  t.regex(text.stdout, new RegExp(`managers: portredir, whitelistfirewall; \\[firewall\\] on nftables\\n  ${id}: whitelist 1 addresses; refused: portredir: .*privileged`));

  await client.requestComputerPartition(release, 'm0', { state: 'destroyed' });
  const stop = await cli(cfg, ['node', 'instance', '--now', '--json']);
  t.true([0, 1].includes(stop.status ?? -1), stop.stderr);
  const report = await cli(cfg, ['node', 'report', '--now', '--json']);
  t.is(report.status, 0, report.stderr);
  t.deepEqual((JSON.parse(report.stdout) as { destroyed: string[] }).destroyed, [id]);
  t.notRegex(table(), new RegExp(`wl_${id}`));
});
