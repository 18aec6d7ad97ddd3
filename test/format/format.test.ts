// `slapos node format` for real, in namespaces made by the tests: users,
// directories, taps, addresses, routes, cgroups, idempotence, crash, shrink.
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { isRoot, run } from '../helpers/system.js';
import { detectLayout } from '../../src/cgroup/layout.js';
import { dryRunSteps, formatCli, formatEnv, ipJson, partitionGroupDir, setPartitionAmount, type FormatEnv } from '../helpers/format.js';

const rootOnly = isRoot ? test.serial : test.skip;

interface IpLink { ifname: string; master?: string; flags: string[]; linkinfo?: { info_kind?: string; info_data?: { type?: string; user?: string; group?: string; persist?: boolean } } }
interface IpAddr { ifname: string; addr_info: { family: string; local: string; prefixlen: number; noprefixroute?: boolean }[] }
interface IpRoute { dst: string; dev: string; gateway?: string; type?: string }

function user(name: string): { uid: number; gid: number; home: string; shell: string } {
  const [, , uid, gid, , home, shell] = run('getent', ['passwd', name]).trim().split(':');
  return { uid: Number(uid), gid: Number(gid), home: home ?? '', shell: shell ?? '' };
}

/** Everything a run leaves on disk for the prefix, with inode and mtime, to compare runs. */
function snapshot(env: FormatEnv): string {
  const files = [env.cfg.replace('slapos.cfg', 'slapos.xml'), env.cfg.replace('slapos.cfg', 'slapos.json')];
  const inst = path.join(env.dir, 'inst');
  for (const d of readdirSync(inst)) files.push(path.join(inst, d), path.join(inst, d, '.slapos-resource'));
  const stats = files.map((f) => {
    const st = statSync(f);
    return `${f} ${st.ino} ${st.mtimeMs} ${st.mode} ${st.uid}`;
  });
  // The user database is shared with tests running at the same time (their
  // useradd/userdel rewrite it), so compare this run's entries, not inodes.
  const entries = ['/etc/passwd', '/etc/group', '/etc/shadow', '/etc/gshadow'].map((f) =>
    `${f}:\n${readFileSync(f, 'utf8').split('\n').filter((line) => line.includes(env.prefix)).join('\n')}`);
  return [...stats, ...entries].join('\n');
}

function assertFormatted(t: ExecutionContext, env: FormatEnv, amount: number, mode: 'bridge' | 'route'): void {
  const { prefix, netns, dir } = env;
  const soft = user(`${prefix}s`);
  const links = ipJson<IpLink[]>(netns, '-d', 'link', 'show');
  const addrs = ipJson<IpAddr[]>(netns, 'addr', 'show');
  const iface = addrs.find((a) => a.ifname === 'slapif0');
  const localRoutes = ipJson<IpRoute[]>(netns, '-6', 'route', 'show', 'table', 'local');
  const routes6 = ipJson<IpRoute[]>(netns, '-6', 'route', 'show');
  t.is(statSync(path.join(dir, 'soft')).uid, soft.uid);
  t.is(statSync(path.join(dir, 'soft')).mode & 0o7777, 0o755);
  t.is(statSync(path.join(dir, 'inst')).mode & 0o7777, 0o755);
  t.is(statSync(path.join(dir, 'certs')).mode & 0o7777, 0o711, 'partition users reach their own certificate files, list nothing');
  for (let i = 0; i < amount; i++) {
    const name = `${prefix}u${i}`;
    const u = user(name);
    const pdir = path.join(dir, 'inst', `${prefix}p${i}`);
    t.is(u.home, pdir);
    t.is(u.shell, '/bin/sh');
    t.is(run('getent', ['group', name]).split(':')[2], String(u.gid));
    t.regex(run('id', ['-Gn', name]), new RegExp(`\\b${prefix}s\\b`));
    t.regex(run('passwd', ['-S', name]), new RegExp(`^${name} L `));
    const st = statSync(pdir);
    t.deepEqual([st.mode & 0o7777, st.uid, st.gid], [0o750, u.uid, u.gid], `${pdir} mode and owner`);
    const resource = JSON.parse(readFileSync(path.join(pdir, '.slapos-resource'), 'utf8')) as { address_list: { addr: string }[]; ipv6_range: { network: string }; tap: { name: string; ipv6_addr: string } };
    t.deepEqual(resource.address_list.map((a) => a.addr), [`10.9.0.${i + 2}`, `fd00:1234:5678:9abc::${(i + 2).toString(16)}`]);
    t.is(resource.ipv6_range.network, `fd00:1234:5678:9abc:${(0x4001 + i).toString(16)}::/80`);
    const tap = links.find((l) => l.ifname === `${prefix}t${i}`);
    t.truthy(tap, `tap ${prefix}t${i} exists`);
    t.like(tap?.linkinfo?.info_data ?? {}, { type: 'tap', user: name, persist: true });
    t.true(tap?.flags.includes('UP'));
    t.true(iface?.addr_info.some((a) => a.local === `10.9.0.${i + 2}` && a.prefixlen === 32));
    t.true(iface?.addr_info.some((a) => a.local === `fd00:1234:5678:9abc::${(i + 2).toString(16)}` && a.prefixlen === 64));
    t.true(localRoutes.some((r) => r.dst === resource.ipv6_range.network && r.dev === 'lo' && r.type === 'local'));
    if (mode === 'bridge') {
      t.is(tap?.master, 'slapif0');
      t.is(resource.tap.ipv6_addr, '');
    } else {
      t.is(tap?.master, undefined);
      const block = (0x8001 + i).toString(16);
      t.is(resource.tap.ipv6_addr, `fd00:1234:5678:9abc:${block}:ffff:ffff:ffff`);
      const tapAddrs = addrs.find((a) => a.ifname === `${prefix}t${i}`)?.addr_info ?? [];
      t.true(tapAddrs.some((a) => a.local === resource.tap.ipv6_addr && a.prefixlen === 80 && a.noprefixroute === true));
      t.true(routes6.some((r) => r.dst === `fd00:1234:5678:9abc:${block}::1` && r.dev === `${prefix}t${i}`));
      t.true(routes6.some((r) => r.dst === `fd00:1234:5678:9abc:${block}::/80` && r.gateway === `fd00:1234:5678:9abc:${block}::1` && r.dev === `${prefix}t${i}`));
    }
    for (const controller of ['cpu', 'memory', 'pids'] as const) t.true(existsSync(partitionGroupDir(env, `${prefix}p${i}`, controller)), `${controller} group of ${prefix}p${i}`);
  }
  // shadow's own checkers find nothing wrong with our entries. Only our names
  // count: tests running beside this one (kill-steps kills commits on purpose)
  // may hold the machine's database half-written for a moment.
  for (const check of ['pwck', 'grpck']) {
    const out = spawnSync(check, ['-r'], { encoding: 'utf8' });
    t.notRegex(out.stdout + out.stderr, new RegExp(`\\b${prefix}[su]`), `${check} -r`);
  }
}

rootOnly('bridged: dry run leaves no trace; killed run converges; re-run is a no-op; isolation; shrink', async (t) => {
  const env = formatEnv(t, { kind: 'bridge' }, {});
  const dry = await formatCli(env, ['--dry-run', '--json']);
  t.true(dryRunSteps(dry).length > 50);
  t.false(existsSync(path.join(env.dir, 'inst')));
  t.false(readFileSync('/etc/passwd', 'utf8').includes(env.prefix));
  t.false(run('ip', ['-n', env.netns, 'link']).includes(`${env.prefix}t`));

  // Killed in the middle of the network steps, then re-run: same final state.
  const killed = await formatCli(env, [], { SLAPOS_FORMAT_TEST_KILL_AFTER: '40' });
  t.is(killed.signal, 'SIGKILL');
  const first = await formatCli(env, []);
  t.is(first.status, 2, first.stderr); // formatted; the master (nothing listens) is unreachable
  t.regex(first.stderr, /reporting to the master failed/);
  assertFormatted(t, env, 10, 'bridge');

  const before = snapshot(env);
  t.deepEqual(dryRunSteps(await formatCli(env, ['--dry-run', '--json'])), []);
  const again = await formatCli(env, []);
  t.is(again.status, 2);
  t.regex(again.stderr, /nothing changed/);
  t.is(snapshot(env), before);

  // A partition user cannot read another partition's directory.
  const u0 = user(`${env.prefix}u0`);
  const other = path.join(env.dir, 'inst', `${env.prefix}p1`);
  const ls = spawnSync('setpriv', [`--reuid=${u0.uid}`, `--regid=${u0.gid}`, '--init-groups', 'ls', other], { encoding: 'utf8' });
  t.not(ls.status, 0);
  t.regex(ls.stderr, /Permission denied/);
  const own = spawnSync('setpriv', [`--reuid=${u0.uid}`, `--regid=${u0.gid}`, '--init-groups', 'ls', path.join(env.dir, 'inst', `${env.prefix}p0`)], { encoding: 'utf8' });
  t.is(own.status, 0, own.stderr);

  // Shrink to 8: refused while slappart9 holds data, then done once it is empty.
  writeFileSync(path.join(env.dir, 'inst', `${env.prefix}p9`, 'data'), 'x');
  setPartitionAmount(env, 8);
  const refused = await formatCli(env, []);
  t.is(refused.status, 1);
  t.regex(refused.stderr, new RegExp(`${env.prefix}p9 still hold`));
  t.notRegex(refused.stderr, new RegExp(`${env.prefix}p8\\b`));
  t.true(existsSync(path.join(env.dir, 'inst', `${env.prefix}p8`)));
  spawnSync('rm', [path.join(env.dir, 'inst', `${env.prefix}p9`, 'data')]);
  // The master (unreachable here) cannot say whether they are busy: refused unless the operator says so.
  const unknown = await formatCli(env, []);
  t.is(unknown.status, 1);
  t.regex(unknown.stderr, /could not say whether .*p8, .*p9 are in use/);
  const shrunk = await formatCli(env, ['--allow-offline-shrink']);
  t.is(shrunk.status, 2, shrunk.stderr);
  for (const i of [8, 9]) {
    t.false(existsSync(path.join(env.dir, 'inst', `${env.prefix}p${i}`)));
    t.is(spawnSync('getent', ['passwd', `${env.prefix}u${i}`]).status, 2);
    t.is(spawnSync('getent', ['group', `${env.prefix}u${i}`]).status, 2);
    t.false(run('ip', ['-n', env.netns, 'link']).includes(`${env.prefix}t${i}:`));
    t.false(run('ip', ['-n', env.netns, 'addr']).includes(`10.9.0.${i + 2}/32`));
    t.false(existsSync(partitionGroupDir(env, `${env.prefix}p${i}`, 'cpu')));
  }
  assertFormatted(t, env, 8, 'bridge');
  t.deepEqual(dryRunSteps(await formatCli(env, ['--dry-run', '--json'])), []);
});

rootOnly('routed: taps get their IPv6 range, gateway and routes; re-run is a no-op', async (t) => {
  const env = formatEnv(t, { kind: 'veth' }, { tap_mode: 'route' });
  const result = await formatCli(env, []);
  t.is(result.status, 2, result.stderr);
  assertFormatted(t, env, 10, 'route');
  t.deepEqual(dryRunSteps(await formatCli(env, ['--dry-run', '--json'])), []);
});

rootOnly('clear errors and nothing changed: missing interface, no global IPv6, IPv4 pool too small, prefix too long', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ interface_name: 'nosuchif0' }, /interface nosuchif0 \(\[slapformat\] interface_name\) does not exist/],
    [{ ipv4_local_network: '10.9.0.0/29' }, /ipv4_local_network 10\.9\.0\.0\/29 is too small for 10 partitions/],
    [{ ipv6_prefixshift: '64' }, /too long for partition ranges/],
  ];
  for (const [keys, message] of cases) {
    const env = formatEnv(t, { kind: 'bridge' }, keys);
    const result = await formatCli(env, []);
    t.is(result.status, 1);
    t.regex(result.stderr, message);
    t.false(existsSync(path.join(env.dir, 'inst')));
    t.false(readFileSync('/etc/passwd', 'utf8').includes(env.prefix));
  }
  const env = formatEnv(t, { kind: 'bridge' }, {});
  run('ip', ['-n', env.netns, 'addr', 'del', 'fd00:1234:5678:9abc::1/64', 'dev', 'slapif0']);
  const result = await formatCli(env, []);
  t.is(result.status, 1);
  t.regex(result.stderr, /slapif0 has no global IPv6 address/);
});

rootOnly('create_tun: each partition gets its tun (owned, up) with the reference IPv4 split and an IPv6 of its tun range; re-run is a no-op', async (t) => {
  const env = formatEnv(t, { kind: 'bridge' }, { partition_amount: '2', create_tun: 'true', tun_base_name: 'slttun' });
  // Tun names follow the test prefix, as the taps do, so that tests never share a device.
  const tunBase = `${env.prefix}n`;
  writeFileSync(env.cfg, readFileSync(env.cfg, 'utf8').replace('tun_base_name = slttun', `tun_base_name = ${tunBase}`));
  const result = await formatCli(env, []);
  t.is(result.status, 2, result.stderr);
  const links = ipJson<IpLink[]>(env.netns, '-d', 'link', 'show');
  const addrs = ipJson<IpAddr[]>(env.netns, 'addr', 'show');
  // 172.16.0.0/12 cut in 2^ceil(log2(2)) = 2 subnets of /13 (§5.4); kind-3 IPv6 ranges.
  const expected = [
    { v4: '172.16.0.1', v6: 'fd00:1234:5678:9abc:c001::1' },
    { v4: '172.24.0.1', v6: 'fd00:1234:5678:9abc:c002::1' },
  ];
  for (const [i, want] of expected.entries()) {
    const name = `${tunBase}${i}`;
    const tun = links.find((l) => l.ifname === name);
    t.like(tun?.linkinfo?.info_data ?? {}, { type: 'tun', user: `${env.prefix}u${i}`, persist: true }, name);
    t.true(tun?.flags.includes('UP'), `${name} is up`);
    t.is(tun?.master, undefined, 'tuns are never bridged');
    const info = addrs.find((a) => a.ifname === name)?.addr_info ?? [];
    t.true(info.some((a) => a.family === 'inet' && a.local === want.v4 && a.prefixlen === 13), `${name} has ${want.v4}/13`);
    t.true(info.some((a) => a.family === 'inet6' && a.local === want.v6 && a.prefixlen === 80), `${name} has ${want.v6}/80`);
    const resource = JSON.parse(readFileSync(path.join(env.dir, 'inst', `${env.prefix}p${i}`, '.slapos-resource'), 'utf8')) as { tun: Record<string, string> };
    t.like(resource.tun, {
      name, ipv4_addr: want.v4, ipv4_netmask: '255.248.0.0', ipv4_network: `${want.v4}/255.248.0.0`,
      ipv6_addr: want.v6, ipv6_netmask: 'ffff:ffff:ffff:ffff:ffff::', ipv6_network: `${want.v6}/80`,
    });
  }
  t.deepEqual(dryRunSteps(await formatCli(env, ['--dry-run', '--json'])), []);
  // Shrinking removes the surplus tun with its partition.
  setPartitionAmount(env, 1);
  t.is((await formatCli(env, ['--allow-offline-shrink'])).status, 2); // the master is unreachable here
  t.false(run('ip', ['-n', env.netns, 'link']).includes(`${tunBase}1:`));
  t.true(run('ip', ['-n', env.netns, 'link']).includes(`${tunBase}0:`));
});

rootOnly('cgroup limits: set from slapos.cfg, lifted when their keys are removed, then a no-op', async (t) => {
  const env = formatEnv(t, { kind: 'bridge' }, { partition_amount: '1', partition_memory_max: '64M', partition_pids_max: '100' });
  // Either layout: v1 controllers (hybrid) or one cgroup2 hierarchy (unified); the test says which it found.
  const kind = detectLayout().kind;
  t.log(`host cgroup layout: ${kind}`);
  const group = (controller: 'memory' | 'pids') => partitionGroupDir(env, `${env.prefix}p0`, controller);
  const memoryFile = `${group('memory')}/${kind === 'unified' ? 'memory.max' : 'memory.limit_in_bytes'}`;
  const read = (file: string) => readFileSync(file, 'utf8').trim();
  t.is((await formatCli(env, [])).status, 2);
  t.is(read(memoryFile), String(64_000_000 - (64_000_000 % 4096)));
  t.is(read(`${group('pids')}/pids.max`), '100');
  writeFileSync(env.cfg, readFileSync(env.cfg, 'utf8').replace(/^partition_(memory|pids)_max = .*\n/gm, ''));
  const lifted = await formatCli(env, []);
  t.is(lifted.status, 2, lifted.stderr);
  if (kind === 'unified') t.is(read(memoryFile), 'max');
  else t.true(BigInt(read(memoryFile)) >= 2n ** 62n);
  t.is(read(`${group('pids')}/pids.max`), 'max');
  t.deepEqual(dryRunSteps(await formatCli(env, ['--dry-run', '--json'])), []);
});
