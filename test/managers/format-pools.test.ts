// The pools through `slapos node format` (in a namespace the test creates):
// each partition gets its loop device and its routable IPv4 (/32 on
// interface_name); a second run changes nothing and keeps the partitions'
// own addresses.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chownSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readPools } from '../../src/managers/pools.js';
import { formatCli, formatEnv } from '../helpers/format.js';
import { isRoot, run, tempDir } from '../helpers/system.js';

const rootTest = isRoot && spawnSync('losetup', ['--version']).status === 0 ? test.serial : test.skip;

rootTest('format gives each partition a block device and a routable IPv4 from the pools, and does it once', async (t) => {
  const img = path.join(tempDir(t, 'slapos-loop-'), 'disk.img');
  writeFileSync(img, Buffer.alloc(1 << 20));
  const device = run('losetup', ['--find', '--show', img]).trim();
  t.teardown(() => { try { chownSync(device, 0, 6); } catch { /* detached */ } spawnSync('losetup', ['-d', device]); });
  const env = formatEnv(t, { kind: 'bridge' }, { partition_amount: '2', partition_block_device_list: device, partition_routable_ipv4_list: '10.9.5.1' });
  const first = await formatCli(env, []);
  t.true([0, 2].includes(first.status ?? -1), first.stderr);
  const instanceRoot = /^instance_root = (.*)$/m.exec(readFileSync(env.cfg, 'utf8'))?.[1] as string;
  const p0 = readdirSync(instanceRoot).find((n) => n.endsWith('p0')) as string;
  t.is(statSync(device).uid, statSync(path.join(instanceRoot, p0)).uid);
  const addrs = () => run('ip', ['-n', env.netns, '-4', 'addr', 'show', 'dev', 'slapif0']);
  t.regex(addrs(), /10\.9\.5\.1\/32/);
  t.deepEqual(readPools(instanceRoot), { blockDevice: { [p0]: device }, ipv4: { [p0]: '10.9.5.1' } });
  const before = addrs();
  const second = await formatCli(env, []);
  t.true([0, 2].includes(second.status ?? -1), second.stderr);
  t.is(addrs(), before, 'a second format changes no address');
  t.is(statSync(device).uid, statSync(path.join(instanceRoot, p0)).uid);
});

