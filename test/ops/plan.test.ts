// Pure decisions of boot, the daemon's scheduler and unit rendering; boot's
// retry loop driven through fakes.
import test from 'ava';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { AF_INET, AF_INET6, type AddressState, type LinkState } from '../../src/network/netlink.js';
import { afterFormat, clearTimestamps, ipv6Readiness, isGlobalIpv6, runBoot } from '../../src/node/boot.js';
import { classify } from '../../src/node/daemon/watch.js';
import { checkSchedule, onFinish, onTrigger } from '../../src/node/daemon/scheduler.js';
import { renderUnit, unitVars } from '../../src/node/systemd.js';
import { tempDir } from '../helpers/system.js';
import { memoryLogger } from './helpers.js';

const v6 = (text: string): bigint => {
  const [head = '', tail = ''] = text.split('::');
  const parts = (s: string) => (s ? s.split(':') : []);
  const groups = [...parts(head), ...Array(8 - parts(head).length - parts(tail).length).fill('0'), ...parts(tail)];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
};

test('format exit status → what boot does next (the reference loop)', (t) => {
  t.is(afterFormat(0), 'bang');
  t.is(afterFormat(2), 'wait-master');
  t.is(afterFormat(1), 'retry');
  t.is(afterFormat(5), 'give-up');
});

test('global IPv6: ULA and global yes; link-local, loopback, multicast, mapped, unspecified no', (t) => {
  for (const a of ['2001:db8::1', 'fd00:1234::1', '2a01:e0a::5']) t.true(isGlobalIpv6(v6(a)), a);
  for (const a of ['fe80::1', 'febf::1', '::1', '::', 'ff02::1', '::ffff:10.0.0.1'.replace('10.0.0.1', 'a00:1')]) t.false(isGlobalIpv6(v6(a)), a);
});

test('IPv6 readiness of an interface: missing, no usable address, ready', (t) => {
  const links: LinkState[] = [{ index: 3, name: 'eth0', up: true, lowerUp: true }];
  const addr = (value: bigint, extra: Partial<AddressState> = {}): AddressState => ({
    index: 3, family: AF_INET6, value, prefixlen: 64, tentative: false, dadfailed: false, noprefixroute: false, ...extra,
  });
  t.is(ipv6Readiness('br0', links, []), 'no-interface');
  t.is(ipv6Readiness('eth0', links, [addr(v6('fe80::1'))]), 'no-address');
  t.is(ipv6Readiness('eth0', links, [addr(v6('2001:db8::1'), { tentative: true })]), 'no-address');
  t.is(ipv6Readiness('eth0', links, [addr(v6('2001:db8::1'), { index: 4 })]), 'no-address');
  t.is(ipv6Readiness('eth0', links, [{ ...addr(0n), family: AF_INET, value: 0x0a000001 }]), 'no-address');
  t.is(ipv6Readiness('eth0', links, [addr(v6('fe80::1')), addr(v6('2001:db8::1'))]), 'ready');
});

test('clearTimestamps removes .timestamp of partitions only, and tolerates a missing root', (t) => {
  const dir = tempDir(t);
  for (const p of ['slappart0', 'slappart1', 'other']) {
    mkdirSync(path.join(dir, p));
    writeFileSync(path.join(dir, p, '.timestamp'), '1');
  }
  mkdirSync(path.join(dir, 'slappart2'));
  writeFileSync(path.join(dir, 'slappart-file'), '');
  t.is(clearTimestamps(dir, 'slappart'), 2);
  t.false(existsSync(path.join(dir, 'slappart0', '.timestamp')));
  t.true(existsSync(path.join(dir, 'other', '.timestamp')));
  t.is(clearTimestamps(path.join(dir, 'nope'), 'slappart'), 0);
});

test('runBoot: format failure and offline are retried, bang is retried, then timestamps are cleared', async (t) => {
  const dir = tempDir(t);
  mkdirSync(path.join(dir, 'inst', 'slappart0'), { recursive: true });
  writeFileSync(path.join(dir, 'inst', 'slappart0', '.timestamp'), '1');
  const config = parseConfig(`[slapos]\ncomputer_id = C\nmaster_url = http://127.0.0.1:1\ninstance_root = ${dir}/inst\n[slapformat]\ninterface_name = eth0\n`, 'x.cfg');
  const formats = [1, 2, 0];
  const calls: string[] = [];
  let probes = 0;
  let bangs = 0;
  const { log, lines } = memoryLogger();
  const status = await runBoot({
    config, log, timings: { ipv6TimeoutMs: 1000, ipv6PollMs: 1, retryDelayMs: 1 },
    readNetwork: async () => ({ links: [{ index: 1, name: 'eth0', up: true, lowerUp: true }], addresses: [{ index: 1, family: AF_INET6, value: v6('2001:db8::1'), prefixlen: 64, tentative: false, dadfailed: false, noprefixroute: false }] }),
    format: async () => { const s = formats.shift() ?? 9; calls.push(`format ${s}`); return s; },
    masterAnswers: async () => { probes += 1; calls.push(`probe ${probes > 2}`); return probes > 2; },
    bang: async (message) => { bangs += 1; calls.push(`bang ${message}`); if (bangs === 1) throw new Error('503'); },
  });
  t.is(status, 0);
  t.deepEqual(calls, ['format 1', 'format 2', 'probe false', 'probe false', 'probe true', 'format 0', 'bang Reboot', 'bang Reboot']);
  t.false(existsSync(path.join(dir, 'inst', 'slappart0', '.timestamp')));
  t.true(lines.some((l) => /boot done: partition timestamps cleared.* timestamps_cleared=1/.test(l)));
});

test('runBoot stops at once when format says not root', async (t) => {
  const config = parseConfig('[slapos]\ncomputer_id = C\nmaster_url = http://127.0.0.1:1\ninstance_root = /nonexistent\n', 'x.cfg');
  const { log } = memoryLogger();
  t.is(await runBoot({ config, log, timings: { ipv6TimeoutMs: 1, ipv6PollMs: 1, retryDelayMs: 1 }, format: async () => 5 }), 5);
});

test('scheduler: a loop never runs twice at once; events queue one run, schedules are skipped', (t) => {
  const idle = { running: false, pending: false };
  const a = onTrigger(idle, 'schedule');
  t.deepEqual(a, { state: { running: true, pending: false }, decision: 'start' });
  t.is(onTrigger(a.state, 'schedule').decision, 'skip');
  const queued = onTrigger(a.state, 'event');
  t.deepEqual(queued, { state: { running: true, pending: true }, decision: 'queue' });
  t.is(onTrigger(queued.state, 'event').decision, 'queue');
  t.deepEqual(onFinish(queued.state), { state: { running: true, pending: false }, again: true });
  t.deepEqual(onFinish(a.state), { state: idle, again: false });
});

test('schedules are validated with the loop name', (t) => {
  t.notThrows(() => checkSchedule('software', '* * * * *'));
  t.notThrows(() => checkSchedule('report', '0 0 * * *'));
  t.throws(() => checkSchedule('instance', 'every minute'), { message: /schedule of loop instance \("every minute"\)/ });
});

test('watched file names → events', (t) => {
  t.is(classify('instance', '.slapos_latest_bang_timestamp'), 'bang');
  t.is(classify('instance', '.slapos-request-transaction-slappart3'), 'request');
  t.is(classify('instance', '.timestamp'), undefined);
  t.is(classify('software', '.completed'), 'software_completed');
  t.is(classify('software', '.slapos_latest_bang_timestamp'), undefined);
});

test('units are rendered with this installation\'s paths; unsafe paths are refused', (t) => {
  const vars = unitVars({ node: '/usr/bin/node', project: '/opt/slapos-node', configFile: '/etc/opt/slapos/slapos.cfg', databaseUri: '/var/lib/slapos/proxy.db' });
  const text = renderUnit('x.service', '[Service]\nExecStart=@NODE@ @SLAPOS@ node boot --cfg @CONFIG@\nProtectHome=@PROTECT_HOME@\nReadWritePaths=@PROXY_DATA_DIR@\n', vars);
  t.regex(text, /^ExecStart=\/usr\/bin\/node \/opt\/slapos-node\/bin\/slapos\.js node boot --cfg \/etc\/opt\/slapos\/slapos\.cfg$/m);
  t.regex(text, /^ProtectHome=yes$/m);
  t.regex(text, /^ReadWritePaths=-\/var\/lib\/slapos$/m);
  t.throws(() => renderUnit('x.service', '@NOPE@', vars), { message: /x\.service: unknown placeholder @NOPE@/ });
  const home = unitVars({ node: '/root/.nvm/node', project: '/root/slapos-node', configFile: '/etc/slapos.cfg', databaseUri: 'postgresql://db/slapos' });
  t.is(home.PROTECT_HOME, 'read-only');
  t.is(home.PROXY_DATA_DIR, '-/opt/slapos');
  t.throws(() => unitVars({ node: '/usr/bin/node', project: '/opt/my node', configFile: '/etc/x.cfg' }), { message: /project directory "\/opt\/my node"/ });
  t.throws(() => unitVars({ node: 'node', project: '/opt/n', configFile: '/etc/x.cfg' }), { message: /node binary/ });
});
