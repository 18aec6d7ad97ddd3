// The managers and [firewall] for real: nftables inside a network namespace
// the test creates (nft run as `ip netns exec <ns> nft`, the [firewall]
// nft_cmd), real users, real TCP connections inside the namespace; request
// files written as the reference's releases write them (json.dumps of a
// list), and hostile ones (link, FIFO, oversized, bad values) refused with
// the rules left as they were.
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Managers } from '../../src/managers/index.js';
import type { ManagerSettings } from '../../src/managers/settings.js';
import { runManagers } from '../../src/instance/managers-hook.js';
import type { ComputerPartition } from '../../src/slap/shapes.js';
import { memoryLogger } from '../ops/helpers.js';
import { createNetns, createUser, isRoot, run, runInNetns, serialUnless, tempDir, type TestUser } from '../helpers/system.js';

// Absolute: npx puts node_modules/.bin first on PATH, where @vercel/nft has a `nft` too.
const NFT = '/usr/sbin/nft';
const hasNft = spawnSync(NFT, ['--version']).status === 0;
const serial = serialUnless(!isRoot ? 'needs root' : !hasNft ? 'nft missing (nftables in scripts/install-deps.sh)' : null);

interface Env {
  ns: string;
  root: string;
  managers: Managers;
  lines: string[];
  partition(id: string, user: TestUser): string;
  pass(id: string, ipList: [string, string][], filter?: Record<string, unknown> | null): Promise<void>;
  nftList(): string;
}

function settings(root: string, ns: string, extra: Partial<ManagerSettings> = {}): ManagerSettings {
  return {
    instanceRoot: root, enabled: ['portredir', 'whitelistfirewall'], powerUsers: new Set(), allowedDisks: [], firewall: undefined,
    nftCommand: ['ip', 'netns', 'exec', ns, NFT], blockDevices: [], routableIpv4: [], ipv4Interface: undefined, timeoutMs: 20_000, ...extra,
  };
}

function setup(t: ExecutionContext, extra: Partial<ManagerSettings> = {}): Env {
  const ns = createNetns(t);
  for (const a of ['10.77.0.1', '10.77.0.2', '10.77.0.3', '10.77.0.9']) run('ip', ['-n', ns, 'addr', 'add', `${a}/32`, 'dev', 'lo']);
  const root = tempDir(t, 'slapos-managers-');
  chmodSync(root, 0o755);
  const { log, lines } = memoryLogger(true);
  // The host's listening sockets are not the namespace's: none counts as in use here.
  const managers = new Managers(settings(root, ns, extra), { log, listening: () => new Set() });
  return {
    ns, root, managers, lines,
    partition(id, user) {
      const dir = path.join(root, id);
      mkdirSync(path.join(dir, '.slapgrid', 'log'), { recursive: true });
      for (const d of [dir, path.join(dir, '.slapgrid'), path.join(dir, '.slapgrid', 'log')]) chownSync(d, user.uid, user.gid);
      chmodSync(dir, 0o750);
      return dir;
    },
    async pass(id, ipList, filter = null) {
      const partition = { parameters: { ip_list: ipList }, ...(filter ? { filter } : {}) } as unknown as ComputerPartition;
      await runManagers(managers, root, id, () => partition, log);
    },
    nftList: () => run('ip', ['netns', 'exec', ns, NFT, 'list', 'table', 'inet', 'slapos']),
  };
}

/** A TCP server inside the namespace answering "hello" (stopped at teardown). */
async function server(t: ExecutionContext, ns: string, host: string, port: number): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e',
    `require('net').createServer((s) => s.end('hello')).listen(${port}, '${host}', () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
}

/** "hello" when the connection went through, else the error code. */
function connect(ns: string, host: string, port: number, options: { user?: TestUser; localAddress?: string } = {}): string {
  const code = `import net from 'node:net';
const s = net.connect({ host: ${JSON.stringify(host)}, port: ${port}${options.localAddress ? `, localAddress: ${JSON.stringify(options.localAddress)}` : ''} });
let data = '';
s.setTimeout(3000, () => { console.log('TIMEOUT'); process.exit(0); });
s.on('data', (d) => { data += d; });
s.on('end', () => { console.log(data); process.exit(0); });
s.on('error', (e) => { console.log(e.code); process.exit(0); });`;
  const result = runInNetns(ns, code, options.user);
  if (result.status !== 0) throw new Error(`client failed: ${result.stderr}`);
  return result.stdout.trim();
}

const json = (value: unknown) => JSON.stringify(value);

serial('whitelistfirewall: the partition user reaches only the listed IPv4; hostile files change nothing; destruction removes the rules', async (t) => {
  const env = setup(t);
  const user = createUser(t);
  const other = createUser(t);
  const dir = env.partition('slappart0', user);
  await server(t, env.ns, '0.0.0.0', 7001);
  writeFileSync(path.join(dir, '.slapos-whitelist-firewall'), json(['10.77.0.2']));
  await env.pass('slappart0', [['slappart0', '10.77.0.2']]);
  t.is(connect(env.ns, '10.77.0.2', 7001, { user }), 'hello');
  t.not(connect(env.ns, '10.77.0.3', 7001, { user }), 'hello', 'an address not listed is refused');
  t.is(connect(env.ns, '10.77.0.3', 7001, { user: other }), 'hello', 'other users are not limited');
  t.is(connect(env.ns, '10.77.0.3', 7001), 'hello', 'root is not limited');

  // Hostile: a link to a root file, a FIFO, an oversized file, a bad entry. Each is refused; the rules stay.
  const file = path.join(dir, '.slapos-whitelist-firewall');
  const attempts: [string, () => void, RegExp][] = [
    ['link', () => { rmSync(file); symlinkSync('/etc/hostname', file); }, /link|ELOOP|refused/i],
    ['fifo', () => { rmSync(file); run('mkfifo', [file]); }, /FIFO/],
    ['huge', () => { rmSync(file); writeFileSync(file, `["${'1'.repeat(200_000)}"]`); }, /larger than/],
    ['bad entry', () => { rmSync(file); writeFileSync(file, json(['10.77.0.2', '10.77.0.3/0; flush ruleset'])); }, /not an IPv4 address/],
  ];
  for (const [what, plant, reason] of attempts) {
    plant();
    await env.pass('slappart0', [['slappart0', '10.77.0.2']]);
    const state = env.managers.status().find((s) => s.partition === 'slappart0');
    t.regex(state?.refused[0]?.reason ?? '', reason, what);
    t.deepEqual(state?.whitelistfirewall?.addresses, ['10.77.0.2'], `${what}: what was applied is kept`);
  }
  t.not(connect(env.ns, '10.77.0.3', 7001, { user }), 'hello', 'rules unchanged after the hostile files');
  t.regex(readFileSync(path.join(dir, '.slapgrid', 'log', 'instance.log'), 'utf8'), /whitelistfirewall: .*not an IPv4 address/, 'refusal in the partition log');
  t.true(env.lines.some((l) => /whitelistfirewall: .*FIFO/.test(l)), 'refusal in the node log');

  // The file gone: no restriction (reference).
  rmSync(file);
  await env.pass('slappart0', [['slappart0', '10.77.0.2']]);
  t.is(connect(env.ns, '10.77.0.3', 7001, { user }), 'hello');
  writeFileSync(file, json(['10.77.0.2']));
  await env.pass('slappart0', [['slappart0', '10.77.0.2']]);
  t.regex(env.nftList(), /wl_slappart0/);
  await env.managers.destroy('slappart0');
  t.notRegex(env.nftList(), /wl_slappart0/);
  t.is(connect(env.ns, '10.77.0.3', 7001, { user }), 'hello');
});

serial('portredir: host port forwarded in-kernel to the partition; conflicts and hostile entries refused; boot re-applies; destruction removes', async (t) => {
  const env = setup(t);
  const user0 = createUser(t);
  const user1 = createUser(t);
  const dir0 = env.partition('slappart0', user0);
  const dir1 = env.partition('slappart1', user1);
  await server(t, env.ns, '10.77.0.2', 7002);
  writeFileSync(path.join(dir0, '.slapos-port-redirect'), json([{ srcPort: 18080, destPort: 7002, srcAddress: '10.77.0.1', destAddress: '10.77.0.2' }]));
  await env.pass('slappart0', [['slappart0', '10.77.0.2']]);
  t.is(connect(env.ns, '10.77.0.1', 18080), 'hello');
  t.is(connect(env.ns, '10.77.0.1', 18080, { user: user1 }), 'hello');
  // Run again: nothing changes (idempotent), still one rule.
  await env.pass('slappart0', [['slappart0', '10.77.0.2']]);
  t.is(env.nftList().match(/dnat ip to 10\.77\.0\.2:7002/g)?.length, 1);

  // Partition 1 asks for the same host port, a privileged one, someone else's address: each refused, partition 0 unaffected.
  for (const [request, reason] of [
    [[{ srcPort: 18080, destPort: 7003, destAddress: '10.77.0.3' }], /another partition/],
    [[{ srcPort: 443, destPort: 7003, destAddress: '10.77.0.3' }], /privileged/],
    [[{ srcPort: 18081, destPort: 7002, destAddress: '10.77.0.2' }], /not one of the partition's addresses/],
  ] as const) {
    writeFileSync(path.join(dir1, '.slapos-port-redirect'), json(request));
    await env.pass('slappart1', [['slappart1', '10.77.0.3']]);
    const state = env.managers.status().find((s) => s.partition === 'slappart1');
    t.regex(state?.refused[0]?.reason ?? '', reason);
    t.is(state?.portredir, undefined);
  }
  t.is(connect(env.ns, '10.77.0.1', 18080), 'hello');

  // Reboot: the kernel forgets the table; boot applies every partition's rules again.
  run('ip', ['netns', 'exec', env.ns, NFT, 'delete', 'table', 'inet', 'slapos']);
  t.not(connect(env.ns, '10.77.0.1', 18080), 'hello');
  t.is(await new Managers(env.managers.settings, { log: memoryLogger().log, listening: () => new Set() }).boot(), 2);
  t.is(connect(env.ns, '10.77.0.1', 18080), 'hello');

  // The request changes: the old port goes, the new one (no srcAddress: any local IPv4 address) comes, in one transaction.
  writeFileSync(path.join(dir0, '.slapos-port-redirect'), json([{ srcPort: '18081', destPort: '7002', destAddress: '10.77.0.2' }]));
  await env.pass('slappart0', [['slappart0', '10.77.0.2']]);
  t.not(connect(env.ns, '10.77.0.1', 18080), 'hello');
  t.is(connect(env.ns, '10.77.0.9', 18081), 'hello');
  t.is(connect(env.ns, '10.77.0.1', 18081, { user: user1 }), 'hello');

  await env.managers.destroy('slappart0');
  t.not(connect(env.ns, '10.77.0.9', 18081), 'hello');
  t.notRegex(env.nftList(), /pr_slappart0|1808[01]/);
});

serial('[firewall]: inbound to the partition\'s routable IPv4 follows fw_* of the filter dict, accept then reject mode', async (t) => {
  const env = setup(t, { enabled: [], firewall: { authorizedSources: [] } });
  const user = createUser(t);
  env.partition('slappart0', user);
  await server(t, env.ns, '0.0.0.0', 7004);
  const ips: [string, string][] = [['slappart0', '10.77.0.2'], ['route_slaptap0', '10.77.0.3']];
  await env.pass('slappart0', ips, { fw_authorized_sources: '10.77.0.9' });
  t.is(connect(env.ns, '10.77.0.3', 7004, { localAddress: '10.77.0.9' }), 'hello');
  t.not(connect(env.ns, '10.77.0.3', 7004, { localAddress: '10.77.0.1' }), 'hello');
  t.is(connect(env.ns, '10.77.0.2', 7004, { localAddress: '10.77.0.1' }), 'hello', 'only route_ addresses are filtered');

  await env.pass('slappart0', ips, { fw_restricted_access: 'off', fw_rejected_sources: '10.77.0.9' });
  t.not(connect(env.ns, '10.77.0.3', 7004, { localAddress: '10.77.0.9' }), 'hello');
  t.is(connect(env.ns, '10.77.0.3', 7004, { localAddress: '10.77.0.1' }), 'hello');

  // A bad source from the master's side: refused, rules kept.
  await env.pass('slappart0', ips, { fw_restricted_access: 'off', fw_rejected_sources: '10.77.0.9 everyone' });
  t.regex(env.managers.status()[0]?.refused[0]?.reason ?? '', /not an IPv4 address or network/);
  t.not(connect(env.ns, '10.77.0.3', 7004, { localAddress: '10.77.0.9' }), 'hello');

  await env.managers.destroy('slappart0');
  t.is(connect(env.ns, '10.77.0.3', 7004, { localAddress: '10.77.0.9' }), 'hello');
  t.notRegex(env.nftList(), /fw_slappart0/);
});
