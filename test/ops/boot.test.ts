// `slapos node boot` for real, in a namespace made by the test: it waits for
// the interface's global IPv6, formats while the master is down (offline),
// waits for the master, formats again, bangs, and clears the timestamps.
// The master runs in this process; a unix socket carries its port into the
// namespace (a forwarder there listens on the namespace's loopback), so the
// test can hold the master "down" simply by not listening on the socket yet.
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { request } from 'undici';
import { startTestMaster } from '../helpers/master.js';
import { formatEnv } from '../helpers/format.js';
import { isRoot, run } from '../helpers/system.js';
import { cliInNetns, type Run } from './helpers.js';

const rootOnly = isRoot ? test.serial : test.skip;
const ADDRESS = 'fd00:1234:5678:9abc::1/64';

/** Listens on 127.0.0.1:port in the namespace and pipes each connection to the unix socket. */
async function forwarder(t: import('ava').ExecutionContext, netns: string, port: number, socket: string): Promise<void> {
  const code = "const net=require('net');const [port,sock]=process.argv.slice(1);" +
    "net.createServer(c=>{const u=net.connect(sock);u.on('error',()=>c.destroy());c.on('error',()=>u.destroy());c.pipe(u).pipe(c);})" +
    ".listen(+port,'127.0.0.1',()=>console.log('ready'));";
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', code, String(port), socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => { child.kill('SIGKILL'); });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (status) => reject(new Error(`forwarder exited with ${status}`)));
  });
}

/** Resolves when the child's stderr so far matches (at most 60 s). */
function output(run: Run, pattern: RegExp): Promise<void> {
  let seen = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`boot never printed ${pattern}: ${seen}`)), 60_000);
    const check = (d: Buffer) => {
      seen += d.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        run.child.stderr?.off('data', check);
        resolve();
      }
    };
    run.child.stderr?.on('data', check);
  });
}

rootOnly('boot waits for IPv6, retries while the master is down, bangs and clears every .timestamp', async (t) => {
  // alter_user = false: boot's business is not users, and other test files
  // compare snapshots of /etc/passwd while they run.
  const env = formatEnv(t, { kind: 'bridge' }, { partition_amount: '2', alter_user: 'false' });
  const master = await startTestMaster(t, 'COMP-TEST');
  const masterPort = Number(new URL(master.url).port);
  const socket = path.join(env.dir, 'master.sock');
  await forwarder(t, env.netns, 8080, socket);
  writeFileSync(env.cfg, readFileSync(env.cfg, 'utf8').replace('master_url = http://127.0.0.1:9', 'master_url = http://127.0.0.1:8080'));
  // Partitions that were deployed before the reboot.
  for (const i of [0, 1]) {
    mkdirSync(path.join(env.dir, 'inst', `${env.prefix}p${i}`), { recursive: true });
    writeFileSync(path.join(env.dir, 'inst', `${env.prefix}p${i}`, '.timestamp'), '1700000000');
  }
  // The network is not up yet at boot.
  run('ip', ['-n', env.netns, 'addr', 'del', ADDRESS, 'dev', 'slapif0']);

  const started = Date.now();
  const boot = cliInNetns(env.netns, ['node', 'boot', '--cfg', env.cfg, '--retry-delay', '0.3', '--ipv6-timeout', '60']);
  t.teardown(() => { boot.child.kill('SIGKILL'); });
  // Each step waits for boot to say it is waiting, so a slow start cannot skip it.
  await output(boot, /waiting for a global IPv6 address interface=slapif0/);
  await new Promise((r) => setTimeout(r, 500));
  run('ip', ['-n', env.netns, 'addr', 'add', ADDRESS, 'dev', 'slapif0', 'nodad']);
  // The master comes up later.
  await output(boot, /waiting until it answers code=MASTER_UNREACHABLE master_url=http:\/\/127\.0\.0\.1:8080\/?/);
  await new Promise((r) => setTimeout(r, 1000));
  const bridge = net.createServer((c) => {
    const m = net.connect(masterPort, '127.0.0.1');
    m.on('error', () => c.destroy());
    c.on('error', () => m.destroy());
    c.pipe(m).pipe(c);
  });
  await new Promise<void>((resolve) => bridge.listen(socket, resolve));
  t.teardown(() => { bridge.close(); });
  const result = await Promise.race([boot.done, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('boot did not finish in 60 s')), 60_000))]);
  const seconds = (Date.now() - started) / 1000;
  t.log(`boot took ${seconds.toFixed(1)} s`);
  t.is(result.status, 0, result.stderr);
  t.regex(result.stderr, /waiting for a global IPv6 address interface=slapif0/);
  t.regex(result.stderr, /waiting until it answers code=MASTER_UNREACHABLE master_url=http:\/\/127\.0\.0\.1:8080\/?/);
  t.regex(result.stderr, /bang sent/);
  for (const i of [0, 1]) t.false(existsSync(path.join(env.dir, 'inst', `${env.prefix}p${i}`, '.timestamp')));
  t.regex(result.stderr, /timestamps_cleared=2/);
  // The master got the computer (format's report) and the bang.
  const metrics = await (await request(`${master.url}metrics`)).body.text();
  t.regex(metrics, /slapos_master_requests_total\{endpoint="\/computerBang",status="200"\} 1\b/);
  t.regex(metrics, /slapos_master_requests_total\{endpoint="\/loadComputerConfigurationFromXML",status="200"\} 1\b/);
});

rootOnly('boot gives up with a clear message when the interface never gets a global IPv6', async (t) => {
  const env = formatEnv(t, { kind: 'bridge' }, { partition_amount: '1', alter_user: 'false' });
  run('ip', ['-n', env.netns, 'addr', 'del', ADDRESS, 'dev', 'slapif0']);
  const result = await cliInNetns(env.netns, ['node', 'boot', '--cfg', env.cfg, '--retry-delay', '0.2', '--ipv6-timeout', '1']).done;
  t.is(result.status, 1);
  t.regex(result.stderr, /interface slapif0 has no global IPv6 address after 1 s/);
});
