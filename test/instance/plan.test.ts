// Pure parts of the instance loop: skip decision, backoff, buildout tail,
// [slap-configuration], supervisord program entries, connection file.
import test from 'ava';
import { afterFailure, backoffDelaySeconds, isBackingOff, partitionFingerprint } from '../../src/partition/backoff.js';
import { decidePartition, parseOnlyCp, unknownPartitions, type DecideInput } from '../../src/partition/decide.js';
import { buildoutValue, instanceConfiguration, slapConfigurationSection } from '../../src/instance/configuration.js';
import { parseConnectionFile, sameParameters } from '../../src/instance/connection.js';
import { exitStatus, summaryLines, type InstanceSummary } from '../../src/instance/loop.js';
import { groupConfig, partitionPrograms } from '../../src/instance/programs.js';
import { buildoutTail } from '../../src/instance/tail.js';
import { instanceBuildoutEnv } from '../../src/instance/steps/buildout.js';
import { transactionTitles } from '../../src/instance/steps/related.js';
import { PyTuple } from '../../src/slap/pyvalue.js';
import type { ComputerPartition } from '../../src/slap/shapes.js';

const NOW = 1_800_000_000_000;
const base: DecideInput = {
  timestamp: '100.5', requestedState: 'started', periodicity: 86400, develop: false, forceStop: false, explicit: false,
  timestampFile: { content: '100.5', mtimeMs: NOW - 1000 }, backoff: undefined, fingerprint: 'f', now: NOW,
};
const policy = { baseSeconds: 60, maxSeconds: 3600 };

test('skip decision follows the reference table', (t) => {
  t.is(decidePartition(base).action, 'up-to-date');
  t.like(decidePartition({ ...base, develop: true }), { action: 'process', writeTimestamp: true });
  t.like(decidePartition({ ...base, timestamp: null }), { action: 'process', writeTimestamp: false });
  t.like(decidePartition({ ...base, timestampFile: null }), { action: 'process', removeTimestamp: false });
  t.like(decidePartition({ ...base, timestampFile: { content: '99', mtimeMs: NOW } }), { action: 'process', removeTimestamp: true });
  t.like(decidePartition({ ...base, timestampFile: { content: '100.5', mtimeMs: NOW - 86_401_000 } }), { action: 'process', removeTimestamp: true });
  t.is(decidePartition({ ...base, periodicity: -1, timestampFile: { content: '100.5', mtimeMs: 0 } }).action, 'up-to-date');
  t.like(decidePartition({ ...base, periodicity: 0 }), { action: 'process', removeTimestamp: false });
  t.like(decidePartition({ ...base, forceStop: true }), { action: 'process', writeTimestamp: false });
  t.is(decidePartition({ ...base, forceStop: true, requestedState: 'stopped' }).action, 'up-to-date');
});

test('backoff holds a failing partition until its time, unless forced, named, or asked something new', (t) => {
  const failing = { ...base, timestampFile: null };
  const b1 = afterFailure(undefined, 'f', NOW, 'boom', policy);
  t.deepEqual([b1.failures, b1.retryAt], [1, NOW + 60_000]);
  t.like(decidePartition({ ...failing, backoff: b1 }), { action: 'backoff', failures: 1, lastError: 'boom' });
  t.is(decidePartition({ ...failing, backoff: b1, now: NOW + 60_000 }).action, 'process');
  t.is(decidePartition({ ...failing, backoff: b1, develop: true }).action, 'process');
  t.is(decidePartition({ ...failing, backoff: b1, explicit: true }).action, 'process');
  t.is(decidePartition({ ...failing, backoff: b1, fingerprint: 'g' }).action, 'process');
  const b2 = afterFailure(b1, 'f', NOW + 61_000, 'boom', policy);
  t.is(b2.failures, 2);
  t.is(b2.retryAt, NOW + 61_000 + 120_000);
  t.is(afterFailure(b2, 'other', NOW, 'x', policy).failures, 1, 'a new request restarts the count');
  t.deepEqual([1, 2, 3, 7, 8, 100].map((n) => backoffDelaySeconds(n, policy)), [60, 120, 240, 3600, 3600, 3600]);
  t.is(backoffDelaySeconds(5, { baseSeconds: 0, maxSeconds: 10 }), 0);
  t.false(isBackingOff(afterFailure(undefined, 'f', NOW, 'x', { baseSeconds: 0, maxSeconds: 1 }), 'f', NOW));
  const fp = (p: object) => partitionFingerprint({ timestamp: '1', softwareUrl: 'u', requestedState: 'started', parameters: p });
  t.is(fp({ a: '1' }), fp({ a: '1' }));
  t.not(fp({ a: '1' }), fp({ a: '2' }));
});

test('--only-cp parsing and unknown ids as the reference', (t) => {
  t.deepEqual(parseOnlyCp('a,b'), ['a', 'b']);
  t.is(parseOnlyCp(undefined), undefined);
  t.is(unknownPartitions(['a'], ['a', 'b']), undefined);
  t.is(unknownPartitions(['x'], ['a']), 'Unknown partition: x');
  t.is(unknownPartitions(['z', 'x'], ['a']), 'Unknown partitions: x, z');
});

const partition: ComputerPartition = {
  computerId: 'COMP-1', partitionId: 'slappart0', requestedState: 'started', needModification: true, instanceGuid: 'COMP-1-slappart0',
  softwareRelease: { url: 'http://sr/software.cfg', computerGuid: 'COMP-1', requestedState: null },
  parameters: {
    foo: 'bar', price: '$5 ${x}', timestamp: '123.4', instance_title: 'inst0', root_instance_title: 'root', slap_software_type: 'default',
    ip_list: [new PyTuple(['slaptap0', '10.0.0.2']), new PyTuple(['slaptap0', 'fd00::2'])], slave_instance_list: [{ slave_reference: 'SLAVE-1', x: 'y' }],
  },
  connectionParameters: {},
};

test('instance configuration: JSON and [slapos-node-configuration] carry the same data', (t) => {
  const c = instanceConfiguration(partition, { tap: { name: 'slaptap0', ipv4_addr: '' }, ipv6_range: {} }, { masterUrl: 'http://m/', storageHome: '', connectionFile: '/p/.slapos-connection.json' });
  t.deepEqual(c.parameters, { foo: 'bar', price: '$5 ${x}' });
  t.deepEqual([c['ipv4-random'], c['ipv6-random'], c['instance-title'], c['software-type'], c.timestamp], ['10.0.0.2', 'fd00::2', 'inst0', 'default', '123.4']);
  t.deepEqual(c['slave-instance-list'], [{ slave_reference: 'SLAVE-1', x: 'y' }]);
  const section = slapConfigurationSection(c, '/p/.slapos-instance.json');
  t.regex(section, /^\[slapos-node-configuration\]\n/);
  t.regex(section, /^ipv4-random = 10\.0\.0\.2$/m);
  t.regex(section, /^ipv6-random = fd00::2$/m);
  t.regex(section, /^instance-title = inst0$/m);
  t.regex(section, /^configuration\.price = \$\$5 \$\$\{x\}$/m, 'no substitution of the requester\'s text');
  t.regex(section, /^tap-name = slaptap0$/m);
  t.is(buildoutValue('a\nb'), '\n  a\n  b');
  const noIp = instanceConfiguration({ ...partition, parameters: {} }, { address_list: [{ addr: '10.1.1.1', netmask: '' }] }, { masterUrl: '', storageHome: '', connectionFile: '' });
  t.is(noIp['ipv4-random'], '10.1.1.1', 'falls back to .slapos-resource');
});

test('buildout tail has the reference sections', (t) => {
  const tail = buildoutTail({
    computerId: 'COMP-1', partitionId: 'slappart0', masterUrl: 'http://m/', softwareReleaseUrl: 'http://sr', keyFile: '', certFile: '',
    sharedPartList: ['/opt/shared'], buildTimePartList: [], requestedState: 'started', storageHome: '', ipv4GlobalNetwork: '',
    slapConfiguration: slapConfigurationSection(instanceConfiguration(partition, undefined, { masterUrl: 'http://m/', storageHome: '', connectionFile: '' }), '/p/.slapos-instance.json'),
  });
  // The reference's sections, in its order, then ours under a name no release uses.
  const sections = [...tail.matchAll(/^\[([^\]]+)\]$/gm)].map((m) => m[1]);
  t.deepEqual(sections, ['buildout', 'slap-connection', 'slap_connection', 'storage-configuration', 'network-information', 'slapos-node-configuration']);
  t.regex(tail, /^bin-directory = \$\{buildout:directory\}\/sbin$/m);
  t.regex(tail, /^offline = true$/m);
  t.regex(tail, /^shared-part-list =\n {2}\/opt\/shared$/m);
  t.regex(tail, /^requested-state = started$/m);
  t.regex(tail, /^computer_id = COMP-1$/m);
});

test('supervisord entries: run and service, -on-watch, contained by slapos-launch (cgroup, user, logger), no partition path handed to supervisord, unsafe names refused', (t) => {
  const src = {
    group: 'slappart0', partitionDir: '/srv/slappart0', uid: 1001, gid: 1002, user: { name: 'slapuser0', home: '/srv/slappart0' }, run: ['b', 'a', 'x\n[program:evil]'], service: ['a'],
    launcher: '/opt/slapos/slapos-launch', cgroupProcs: ['/sys/fs/cgroup/pids/slapos/slappart0/cgroup.procs'],
  };
  t.deepEqual(partitionPrograms(src).map((p) => [p.id, p.processName, p.command]), [
    ['a', 'a-on-watch', '/srv/slappart0/etc/service/a'],
    ['b', 'b', '/srv/slappart0/etc/run/b'],
  ]);
  const text = groupConfig(src)!;
  t.regex(text, /^\[group:slappart0\]\nprograms = slappart0_a,slappart0_b$/m);
  t.regex(text, /^\[program:slappart0_b\]\ncommand = \/opt\/slapos\/slapos-launch --cgroup \/sys\/fs\/cgroup\/pids\/slapos\/slappart0\/cgroup\.procs --uid 1001 --gid 1002 --init-groups --chdir \/srv\/slappart0 --log \/srv\/slappart0\/\.slappart0_b\.log --log-max 102400 --log-backups 1 -- \/srv\/slappart0\/etc\/run\/b\nredirect_stderr = true\nstdout_logfile = AUTO\n/m);
  // supervisord (root) gets no path of the partition but in the launcher's arguments: no directory, user, log file there.
  for (const line of text.split('\n').filter((l) => l.includes('/srv/slappart0') && !l.startsWith('command = ') && !l.startsWith('environment = '))) t.fail(`partition path handed to supervisord: ${line}`);
  t.notRegex(text, /^(user|group|directory|stderr_logfile) =/m);
  t.regex(text, /^environment = USER="slapuser0",LOGNAME="slapuser0",HOME="\/srv\/slappart0"$/m);
  t.notRegex(text, /evil/);
  t.is(groupConfig({ ...src, run: [], service: [] }), undefined);
});

test('connection file: flat parameters and per-slave ones', (t) => {
  const c = parseConnectionFile('{"url": "http://x/", "n": 3, "_slaves": {"SLAVE-1": {"url": "http://s/"}}}', 'f');
  t.deepEqual(c, { own: { url: 'http://x/', n: '3' }, slaves: { 'SLAVE-1': { url: 'http://s/' } } });
  t.throws(() => parseConnectionFile('[1]', 'f'), { message: /must be a JSON object/ });
  t.throws(() => parseConnectionFile('{', 'f'), { message: /not JSON/ });
  t.true(sameParameters({ url: 'http://x/', n: '3' }, c.own));
  t.false(sameParameters({ url: 'http://x/' }, c.own));
});

test('summary lines and exit statuses as the reference', (t) => {
  const summary: InstanceSummary = {
    offline: false, processed: [], upToDate: [], free: [], filtered: [], missing: [], ms: 0,
    failed: [{ id: 'slappart1', softwareType: '(not ready)', error: 'boom\nmore' }], promiseFailed: [],
  };
  t.deepEqual(summaryLines(summary), ['Finished computer partitions.', '='.repeat(80), 'Error while processing the following partitions:', '  slappart1[(not ready)]: boom']);
  t.is(exitStatus(summary), 1);
  t.is(exitStatus({ ...summary, failed: [], promiseFailed: summary.failed }), 2);
  t.is(exitStatus({ ...summary, failed: [] }), 0);
});

test('related instances: the transaction file\'s titles, and the buildout environment that lets slapos.slap write it', (t) => {
  t.deepEqual(transactionTitles('child0\n\nchild1\n'), ['child0', 'child1']);
  t.deepEqual(transactionTitles(''), []);
  const env = instanceBuildoutEnv('/srv/slapgrid', { SLAPOS_CLIENT_CONFIGURATION: '/etc/slapos/client.cfg', SECRET: 'x' });
  t.deepEqual(env, { SLAPGRID_INSTANCE_ROOT: '/srv/slapgrid', EDITOR: 'vi', SLAPOS_CLIENT_CONFIGURATION: '/etc/slapos/client.cfg' });
  t.deepEqual(instanceBuildoutEnv('/i', { EDITOR: 'nano' }), { SLAPGRID_INSTANCE_ROOT: '/i', EDITOR: 'nano' });
});
