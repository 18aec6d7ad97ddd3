// Taking over a node that the reference `slapos node format` (slapos.core 1.24)
// formatted: the node is rebuilt in a test namespace from the recorded data
// (test/fixtures/reference-node/), then our format runs on it with the
// reference's slapos.cfg. Nothing may be removed, renamed, re-owned or
// re-addressed; the live node must equal the recorded state.json apart from
// the additions listed here.
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { dryRunSteps, formatCli, type FormatEnv } from '../helpers/format.js';
import { diffStates, normaliseState, snapshotNode, type NodeState } from '../helpers/node-snapshot.js';
import { fixturesDir } from '../helpers/paths.js';
import { BIN } from '../helpers/proxy-process.js';
import { recreateReferenceNode, substitute, variantFixture, type ReferenceNode } from '../helpers/reference-node.js';
import { isRoot, repoRoot } from '../helpers/system.js';
import { marshalComputer, type Dict } from '../../src/format/computer-xml.js';
import { sortedJson } from '../../src/format/computer.js';
import { fetchInNetns, stopSupervisord } from '../instance/env.js';

const EXAMPLE = path.join(repoRoot, 'examples', 'hello-http', 'software.cfg');
const rootOnly = isRoot ? test.serial : test.skip;
const fixture = path.join(fixturesDir, 'reference-node');
const recorded = (): NodeState => normaliseState(JSON.parse(readFileSync(path.join(fixture, 'state.json'), 'utf8')) as NodeState);

/** formatCli's environment for a rebuilt node (the cgroup parent is ours: an addition). */
function envOf(node: ReferenceNode): FormatEnv {
  return { netns: node.netns, prefix: 'rf', dir: node.dir, cfg: node.cfg, cgroupParent: 'slapos' };
}

rootOnly('the rebuilt reference node equals the recorded state.json (the helpers agree with the capture)', async (t) => {
  const node = recreateReferenceNode(t);
  const differences = diffStates(recorded(), await snapshotNode(node));
  t.deepEqual(differences, [], JSON.stringify(differences));
});

/**
 * Our minimal master started inside the node's namespace on the address the
 * fixture's slapos.cfg names ([slapproxy] host/port), as the reference's was.
 */
async function startMasterInNetns(t: ExecutionContext, node: ReferenceNode): Promise<void> {
  const cfg = readFileSync(node.cfg, 'utf8');
  const port = /^\[slapproxy\][^[]*?^port\s*=\s*(\d+)/ms.exec(cfg)?.[1] ?? '';
  const child = spawn('nsenter', [`--net=/run/netns/${node.netns}`, process.execPath, BIN, 'proxy', 'start', '--cfg', node.cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
  });
  for (let i = 0; i < 100; i++) {
    if (spawnSync('ip', ['netns', 'exec', node.netns, 'bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]).status === 0) return;
    if (child.exitCode !== null) throw new Error(`master exited: ${stderr.slice(-800)}`);
    await sleep(100);
  }
  throw new Error(`master did not listen on 127.0.0.1:${port} in ${node.netns}: ${stderr.slice(-800)}`);
}

/**
 * The fixture's slapos.cfg is used unchanged, so format makes the partitions'
 * control groups under the default parent ("slapos"), in every hierarchy:
 * remove at the end only those (and the parent) that did not exist before.
 */
function removeNewCgroupsAtEnd(t: ExecutionContext, names: string[]): void {
  const root = '/sys/fs/cgroup';
  const hierarchies = existsSync(path.join(root, 'cgroup.controllers')) ? [root] : readdirSync(root).map((h) => path.join(root, h));
  const groups = hierarchies.flatMap((h) => names.map((n) => path.join(h, 'slapos', n))).filter((d) => !existsSync(d));
  const parents = [...new Set(groups.map((d) => path.dirname(d)))].filter((d) => !existsSync(d));
  t.teardown(() => {
    for (const dir of [...groups, ...parents]) spawnSync('rmdir', [dir]);
  });
}

/** Step kinds that could remove, rename, re-own or re-address anything. */
const DESTRUCTIVE = new Set(['users', 'chown', 'chmod', 'tap', 'tap-delete', 'link-master', 'addr-add', 'addr-del', 'route-add', 'route-del', 'remove-partition-dir', 'cgroup-remove', 'sysctl']);

/**
 * What our format adds to a reference node, and the only differences allowed
 * with the recorded state.json: the computer state files are rewritten
 * because they report this implementation (os_type, python_version,
 * slapos_version); per-partition control groups are created (not part of the
 * snapshot). Everything else must be exactly as the reference left it.
 */
const ALLOWED_FILE_CHANGES = ['@DIR@/slapos.xml', '@DIR@/slapos.json'];
/** Files of ours format adds (or rewrites), root's and private: the record of the last report the master accepted (src/format/report-record.ts). */
const ADDED_FILES = ['@DIR@/slapos.xml.reported.json'];
const IMPLEMENTATION_KEYS = ['os_type', 'python_version', 'slapos_version'];

function assertOnlyAllowed(t: ExecutionContext, differences: ReturnType<typeof diffStates>): void {
  const unexpected = differences.filter((d) => {
    const m = /^files\[(.*)\]$/.exec(d.where);
    const e = d.expected as Record<string, unknown> | undefined;
    const a = d.actual as Record<string, unknown> | undefined;
    if (m && ADDED_FILES.includes(m[1] as string)) return a?.owner !== 'root' || a.mode !== '0600' || (e !== undefined && (e.owner !== 'root' || e.mode !== '0600'));
    if (!m || !ALLOWED_FILE_CHANGES.includes(m[1] as string)) return true;
    // Same file, same mode and owner: only the content changed.
    return !e || !a || e.mode !== a.mode || e.owner !== a.owner || e.group !== a.group;
  });
  t.deepEqual(unexpected, [], JSON.stringify(unexpected, null, 1));
}

rootOnly('takeover: our format adopts the reference node as found, adds only its own, a re-run changes nothing, and an instance deploys on slappart0', async (t) => {
  const node = recreateReferenceNode(t);
  const env = envOf(node);
  removeNewCgroupsAtEnd(t, ['slappart0', 'slappart1', 'slappart2']);
  await startMasterInNetns(t, node);
  const before = await snapshotNode(node);

  // 1. Dry run: nothing destructive, the mode comes from the taps (routed), and the
  //    computer is the reference's record apart from what describes the implementation.
  const dry = await formatCli(env, ['--dry-run', '--json']);
  const steps = dryRunSteps(dry) as { kind: string; path?: string }[];
  t.deepEqual(steps.filter((s) => DESTRUCTIVE.has(s.kind)), [], 'no step removes, renames, re-owns or re-addresses');
  t.deepEqual(steps.filter((s) => s.kind === 'write-file' && s.path?.endsWith('.slapos-resource')), [], '.slapos-resource files are already what we would write');
  const plan = JSON.parse(dry.stdout) as { mode: string; computer: Record<string, unknown> };
  t.is(plan.mode, 'route');
  const reference = JSON.parse(substitute(readFileSync(path.join(fixture, 'slapos.json'), 'utf8'), node)) as Record<string, unknown>;
  const strip = (c: Record<string, unknown>) => Object.fromEntries(Object.entries(c).filter(([k]) => !IMPLEMENTATION_KEYS.includes(k)));
  t.deepEqual(strip(plan.computer), strip(reference), 'the computer reported equals the reference\'s apart from the implementation keys');
  t.deepEqual(await snapshotNode(node), before, 'a dry run changes nothing');

  // 2. The run: reported to the master, the node equals the recorded state apart from the listed additions.
  const first = await formatCli(env, ['--json']);
  t.is(first.status, 0, first.stderr);
  t.true((JSON.parse(first.stdout.trim().split('\n').pop() ?? '{}') as { reported?: boolean }).reported === true);
  const after = await snapshotNode(node);
  assertOnlyAllowed(t, diffStates(recorded(), after));
  assertOnlyAllowed(t, diffStates(before, after));
  // The state file is the reference's, byte for byte, once its three implementation keys carry our values.
  const ours = JSON.parse(readFileSync(path.join(node.dir, 'slapos.json'), 'utf8')) as Dict;
  const expected = { ...reference, ...Object.fromEntries(IMPLEMENTATION_KEYS.map((k) => [k, ours[k] ?? null])) } as Dict;
  t.is(readFileSync(path.join(node.dir, 'slapos.xml'), 'utf8'), marshalComputer(expected).pretty);
  for (let i = 0; i < 3; i++) {
    t.is(readFileSync(path.join(node.instanceRoot, `slappart${i}`, '.slapos-resource'), 'utf8'),
      substitute(readFileSync(path.join(fixture, `slappart${i}.slapos-resource`), 'utf8'), node), `slappart${i}/.slapos-resource kept byte for byte`);
  }

  // 3. A re-run plans nothing and changes nothing.
  t.deepEqual(dryRunSteps(await formatCli(env, ['--dry-run', '--json'])), []);
  const again = await formatCli(env, []);
  t.is(again.status, 0, again.stderr);
  t.deepEqual(diffStates(after, await snapshotNode(node)), []);

  // 4. The example release deploys on the adopted slappart0 and answers on its adopted addresses.
  //    Test-only keys: pid files and free-space floors of this run (machine-wide defaults otherwise).
  writeFileSync(node.cfg, readFileSync(node.cfg, 'utf8').replace('[slapos]\n', `[slapos]\npidfile_software = ${node.dir}/sr.pid\npidfile_instance = ${node.dir}/cp.pid\n` +
    'software_min_free_space = 1M\ninstance_min_free_space = 1M\n'));
  t.teardown(() => stopSupervisord(node.instanceRoot));
  const inNetns = (...args: string[]) => spawnSync('nsenter', [`--net=/run/netns/${node.netns}`, process.execPath, BIN, ...args, '--cfg', node.cfg], {
    encoding: 'utf8', timeout: 240_000, env: { PATH: process.env.PATH },
  });
  const computerId = /^computer_id\s*=\s*(\S+)/m.exec(readFileSync(node.cfg, 'utf8'))?.[1] ?? '';
  for (const step of [['supply', EXAMPLE, computerId], ['node', 'software', '--now'], ['request', 'inst0', EXAMPLE], ['node', 'supervisord'], ['node', 'instance', '--now']]) {
    const result = inNetns(...step);
    t.is(result.status, 0, `${step.join(' ')}: ${result.stderr.slice(-1500)}`);
  }
  const conf = JSON.parse(readFileSync(path.join(node.instanceRoot, 'slappart0', '.slapos-instance.json'), 'utf8')) as { 'ipv4-random': string; 'ipv6-random': string };
  t.deepEqual([conf['ipv4-random'], conf['ipv6-random']], ['10.41.209.111', 'fd00:cafe:1::2'], 'the reference\'s addresses of slappart0');
  for (const url of [`http://${conf['ipv4-random']}:8080/`, `http://[${conf['ipv6-random']}]:8080/`]) {
    let body = fetchInNetns(node.netns, url).body;
    for (let i = 0; i < 40 && !body.includes('Hello from inst0'); i++) {
      await sleep(250);
      body = fetchInNetns(node.netns, url).body;
    }
    t.regex(body, /Hello from inst0/, url);
  }
});

rootOnly('takeover: a tap_mode that contradicts the node is reported, not applied', async (t) => {
  const node = recreateReferenceNode(t);
  writeFileSync(node.cfg, readFileSync(node.cfg, 'utf8').replace('[slapformat]\n', '[slapformat]\ntap_mode = bridge\n'));
  const dry = await formatCli(envOf(node), ['--dry-run', '--json']);
  const steps = dryRunSteps(dry);
  t.deepEqual(steps.filter((s) => DESTRUCTIVE.has(s.kind)), []);
  t.is((JSON.parse(dry.stdout) as { mode: string }).mode, 'route');
  t.regex(dry.stderr, /tap_mode = bridge contradicts this node: its taps are routed/);
});

rootOnly('rebuild: the reference node without its state files keeps every address (random IPv4s included), and the run says where they came from', async (t) => {
  const node = recreateReferenceNode(t);
  const env = envOf(node);
  removeNewCgroupsAtEnd(t, ['slappart0', 'slappart1', 'slappart2']);
  const before = await snapshotNode(node);
  for (const file of ['slapos.xml', 'slapos.json']) rmSync(path.join(node.dir, file));
  const dry = await formatCli(env, ['--dry-run', '--json']);
  const steps = dryRunSteps(dry);
  t.deepEqual(steps.filter((s) => DESTRUCTIVE.has(s.kind)), []);
  const warnings = (JSON.parse(dry.stdout) as { warnings: string[] }).warnings;
  t.true(warnings.some((w) => /^slappart1: not in the state file; its addresses \(10\.41\.229\.159, fd00:cafe:1::3\) are taken from the partition's \.slapos-resource and the kernel/.test(w)), warnings.join('\n'));
  const run = await formatCli(env, []);
  t.true(run.status === 0 || run.status === 2, run.stderr); // no master here: offline is fine
  assertOnlyAllowed(t, diffStates(before, await snapshotNode(node)));
  const json = JSON.parse(readFileSync(path.join(node.dir, 'slapos.json'), 'utf8')) as { partition_list: { address_list: { addr: string }[] }[] };
  t.deepEqual(json.partition_list.map((p) => p.address_list[0]?.addr), ['10.41.209.111', '10.41.229.159', '10.41.210.253']);
});

rootOnly('rebuild: a state file older than the kernel (an old backup) loses: the kernel\'s addresses are kept and the run says what it reconciled', async (t) => {
  const node = recreateReferenceNode(t);
  const env = envOf(node);
  // An old backup: slappart1's IPv4 was another one then.
  for (const file of ['slapos.xml', 'slapos.json']) {
    const f = path.join(node.dir, file);
    writeFileSync(f, readFileSync(f, 'utf8').replaceAll('10.41.229.159', '10.41.64.120'));
  }
  const before = await snapshotNode(node);
  const dry = await formatCli(env, ['--dry-run', '--json']);
  const plan = JSON.parse(dry.stdout) as { warnings: string[]; steps: { kind: string; address?: string }[]; computer: { partition_list: { address_list: { addr: string }[] }[] } };
  t.deepEqual(plan.steps.filter((s) => DESTRUCTIVE.has(s.kind)), [], 'the stale address is not added back, the live one not removed');
  t.true(plan.warnings.some((w) => w.includes('slappart1: the state file records 10.41.64.120, fd00:cafe:1::3, but the kernel has 10.41.229.159, fd00:cafe:1::3')), plan.warnings.join('\n'));
  t.is(plan.computer.partition_list[1]?.address_list[0]?.addr, '10.41.229.159');
  t.deepEqual(diffStates(before, await snapshotNode(node)), []);
});

rootOnly('takeover of another reference layout (other prefix, IPv4 pool and names): nothing destructive, only the listed additions', async (t) => {
  const dir = variantFixture(t, [['fd00:cafe:1:', 'fd00:beef:7:'], ['10.41.', '10.57.'], ['rfuser', 'rvuser'], ['rfsoft', 'rvsoft'], ['rftap', 'rvtap'], ['slappart', 'vpart'], ['rfv', 'rvv']]);
  const node = recreateReferenceNode(t, dir);
  const env = envOf(node);
  removeNewCgroupsAtEnd(t, ['vpart0', 'vpart1', 'vpart2']);
  const before = await snapshotNode(node);
  const dry = await formatCli(env, ['--dry-run', '--json']);
  t.deepEqual(dryRunSteps(dry).filter((s) => DESTRUCTIVE.has(s.kind)), []);
  t.is((JSON.parse(dry.stdout) as { mode: string }).mode, 'route');
  const run = await formatCli(env, []);
  t.true(run.status === 0 || run.status === 2, run.stderr); // no master here: offline is fine
  assertOnlyAllowed(t, diffStates(before, await snapshotNode(node)));
  t.is(readFileSync(path.join(node.instanceRoot, 'vpart2', '.slapos-resource'), 'utf8'), substitute(readFileSync(path.join(dir, 'vpart2.slapos-resource'), 'utf8'), node));
});

rootOnly('rebuild: without state file nor .slapos-resource, the allocated partition gets its addresses from the master, free ones adopt the kernel\'s unclaimed /32s; nothing is added or removed', async (t) => {
  const node = recreateReferenceNode(t);
  const env = envOf(node);
  removeNewCgroupsAtEnd(t, ['slappart0', 'slappart1', 'slappart2']);
  await startMasterInNetns(t, node);
  t.is((await formatCli(env, [])).status, 0, 'reported to the master');
  // An instance is requested: the master then lists its partition's addresses (ip_list).
  const inNetns = (...args: string[]) => spawnSync('nsenter', [`--net=/run/netns/${node.netns}`, process.execPath, BIN, ...args, '--cfg', node.cfg], { encoding: 'utf8', timeout: 60_000 });
  t.is(inNetns('supply', EXAMPLE, 'COMP-REF-A').status, 0);
  t.is(inNetns('request', 'inst0', EXAMPLE).status, 0);
  const before = await snapshotNode(node);
  for (const file of ['slapos.xml', 'slapos.json', ...[0, 1, 2].map((i) => `inst/slappart${i}/.slapos-resource`)]) rmSync(path.join(node.dir, file));

  const dry = await formatCli(env, ['--dry-run', '--json']);
  const plan = JSON.parse(dry.stdout) as { warnings: string[]; steps: { kind: string }[] };
  t.deepEqual(plan.steps.filter((s) => DESTRUCTIVE.has(s.kind)), [], plan.warnings.join('\n'));
  t.true(plan.warnings.some((w) => w.startsWith('slappart0: not in the state file; its addresses (10.41.209.111, fd00:cafe:1::2) are taken from the master and the kernel')), plan.warnings.join('\n'));
  t.true(plan.warnings.some((w) => w.startsWith('slappart1: no record of its addresses; adopting 10.41.210.253')), plan.warnings.join('\n'));
  t.is((await formatCli(env, [])).status, 0);
  // The kernel is untouched: no address added or removed. The allocated partition's
  // .slapos-resource comes back byte for byte; the two free ones share the two
  // unclaimed /32s, which one gets which is not known any more.
  const differences = diffStates(before, await snapshotNode(node));
  const free = ['@INSTANCE_ROOT@/slappart1/.slapos-resource', '@INSTANCE_ROOT@/slappart2/.slapos-resource'];
  assertOnlyAllowed(t, differences.filter((d) => !free.some((f) => d.where === `files[${f}]`)));
  const json = JSON.parse(readFileSync(path.join(node.dir, 'slapos.json'), 'utf8')) as { partition_list: { address_list: { addr: string }[] }[] };
  const ipv4 = json.partition_list.map((p) => p.address_list[0]?.addr);
  t.is(ipv4[0], '10.41.209.111');
  t.deepEqual(ipv4.slice(1).sort(), ['10.41.210.253', '10.41.229.159']);
});

/**
 * The reference layout with `create_tun = true`, written into a variant copy:
 * the tuns `slaptunN` (`ip tuntap … mode tun user U`, up) with the reference's
 * addressing (slapformat.md §5.4: 172.16.0.0/12 cut in 2^ceil(log2(amount))
 * subnets, the IPv6 range of kind 3), recorded in slapos.json, slapos.xml
 * (marshalled as the reference does) and each .slapos-resource. Not a
 * capture: built from the specification, to check that adoption of tuns is
 * generic.
 */
function addTuns(dir: string): void {
  const json = JSON.parse(readFileSync(path.join(dir, 'slapos.json'), 'utf8')) as Dict & { partition_list: Dict[] };
  const amount = json.partition_list.length;
  const plen = 12 + Math.ceil(Math.log2(amount));
  const mask = (0xffffffff << (32 - plen)) >>> 0;
  const dotted = [24, 16, 8, 0].map((b) => (mask >>> b) & 255).join('.');
  const links = JSON.parse(readFileSync(path.join(dir, 'kernel', 'ip-link.json'), 'utf8')) as Dict[];
  const addrs = JSON.parse(readFileSync(path.join(dir, 'kernel', 'ip-addr.json'), 'utf8')) as Dict[];
  json.partition_list.forEach((p, i) => {
    const v4 = `172.${16 + ((i << (32 - plen)) >>> 16)}.0.1`;
    const prefix = String((p.ipv6_range as Dict).addr).split(':4')[0]; // "fd00:cafe:1:0" of "fd00:cafe:1:0:4001::"
    const v6 = `${prefix}:c00${i + 1}::1`;
    p.tun = {
      ipv4_addr: v4, ipv4_gateway: '', ipv4_netmask: dotted, ipv4_network: `${v4}/${dotted}`,
      ipv6_addr: v6, ipv6_gateway: '', ipv6_netmask: 'ffff:ffff:ffff:ffff:ffff::', ipv6_network: `${v6}/80`, name: `slaptun${i}`,
    };
    const user = String((p.user as Dict).name);
    links.push({ ifname: `slaptun${i}`, flags: ['POINTOPOINT', 'MULTICAST', 'NOARP', 'UP'], linkinfo: { info_kind: 'tun', info_data: { type: 'tun', pi: false, vnet_hdr: false, multi_queue: false, persist: true, user } } });
    addrs.push({ ifname: `slaptun${i}`, addr_info: [
      { family: 'inet', local: v4, prefixlen: plen, scope: 'global' },
      { family: 'inet6', local: v6, prefixlen: 80, scope: 'global' },
    ] });
    writeFileSync(path.join(dir, `${String(p.reference)}.slapos-resource`), sortedJson(p, 4));
  });
  writeFileSync(path.join(dir, 'slapos.json'), sortedJson(json, 2));
  writeFileSync(path.join(dir, 'slapos.xml'), marshalComputer(json).pretty);
  writeFileSync(path.join(dir, 'kernel', 'ip-link.json'), JSON.stringify(links));
  writeFileSync(path.join(dir, 'kernel', 'ip-addr.json'), JSON.stringify(addrs));
  writeFileSync(path.join(dir, 'slapos.cfg'), readFileSync(path.join(dir, 'slapos.cfg'), 'utf8').replace('[slapformat]\n', '[slapformat]\ncreate_tun = true\n'));
}

rootOnly('takeover of a reference layout with create_tun: tuns adopted as found (owner, addresses), nothing destructive, records kept byte for byte', async (t) => {
  const dir = variantFixture(t, [['rfuser', 'rtuser'], ['rfsoft', 'rtsoft'], ['rftap', 'rttap'], ['slappart', 'tpart'], ['rfv', 'rtv'], ['10.41.', '10.58.']]);
  addTuns(dir);
  const node = recreateReferenceNode(t, dir);
  const env = envOf(node);
  const tun0 = ((await snapshotNode(node)).links as { name: string; tun?: { type: string; sys_owner: string } }[]).find((l) => l.name === 'slaptun0');
  t.like(tun0?.tun, { type: 'tun', sys_owner: 'rtuser0' });
  removeNewCgroupsAtEnd(t, ['tpart0', 'tpart1', 'tpart2']);
  const before = await snapshotNode(node);
  const dry = await formatCli(env, ['--dry-run', '--json']);
  const steps = dryRunSteps(dry) as { kind: string; path?: string }[];
  t.deepEqual(steps.filter((s) => DESTRUCTIVE.has(s.kind)), []);
  t.deepEqual(steps.filter((s) => s.kind === 'write-file' && s.path?.endsWith('.slapos-resource')), []);
  const run = await formatCli(env, []);
  t.true(run.status === 0 || run.status === 2, run.stderr); // no master here: offline is fine
  assertOnlyAllowed(t, diffStates(before, await snapshotNode(node)));
  t.deepEqual(dryRunSteps(await formatCli(env, ['--dry-run', '--json'])), []);
});
