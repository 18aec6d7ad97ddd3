// Pure accounting logic: aggregation, TioXML rendering and validation, destruction decisions, disk/quota parsing.
import test from 'ava';
import type { Dict } from '../../src/format/computer-xml.js';
import { execFileSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { finishedPeriods, partitionUsage, periodJournal, periodUsage, type Sample } from '../../src/accounting/aggregate.js';
import { decideDestruction, isPartitionConf, prermConf, retention } from '../../src/accounting/destroy-plan.js';
import { mountPointOf, parseRepquota, walkOrder } from '../../src/accounting/disk.js';
import { partitionsFromNaming, partitionsFromState } from '../../src/accounting/partitions.js';
import { formatQuantity, parseConsumption, partitionFilesJournal, validateJournal } from '../../src/accounting/tioxml.js';
import { repoRoot } from '../helpers/paths.js';
import { tempDir } from '../helpers/system.js';

const s = (partition: string, at: number, values: Partial<Sample> = {}): Sample => ({
  partition, at, cpuUsec: null, memoryBytes: null, memoryPeakBytes: null, ioReadBytes: null, ioWriteBytes: null, pids: null,
  netRxBytes: null, netTxBytes: null, netRxPackets: null, netTxPackets: null, diskBytes: null, ...values,
});

test('counters: increases from the baseline, a reset counts from zero, nulls are skipped', (t) => {
  const usage = partitionUsage('p', s('p', 0, { cpuUsec: 1_000_000, netTxBytes: 100 }), [
    s('p', 60, { cpuUsec: 3_000_000, netTxBytes: 300 }),
    s('p', 120, { cpuUsec: null, netTxBytes: 350 }),
    s('p', 180, { cpuUsec: 500_000, netTxBytes: 50 }), // cgroup and tap re-created
  ]);
  t.is(usage.cpuSeconds, 2 + 0.5);
  t.is(usage.netInBytes, 200 + 50 + 50);
  t.is(usage.samples, 3);
});

test('gauges: memory mean, a peak counter that rose in the period, no baseline = first sample', (t) => {
  const usage = partitionUsage('p', undefined, [
    s('p', 0, { memoryBytes: 100, memoryPeakBytes: 500, pids: 2, cpuUsec: 10 }),
    s('p', 60, { memoryBytes: 300, memoryPeakBytes: 900, pids: 4, cpuUsec: 20, diskBytes: 4096 }),
  ]);
  t.is(usage.memoryMeanBytes, 200);
  t.is(usage.memoryPeakBytes, 900);
  t.is(usage.pidsMean, 3);
  t.is(usage.cpuSeconds, 10 / 1e6);
  t.is(usage.diskMeanBytes, 4096);
  const flat = partitionUsage('p', s('p', -60, { memoryPeakBytes: 900 }), [s('p', 0, { memoryBytes: 100, memoryPeakBytes: 900 })]);
  t.is(flat.memoryPeakBytes, 100, 'an unchanged high-water mark is from an earlier period');
});

test('finished periods: only those over (plus grace), each once', (t) => {
  t.deepEqual(finishedPeriods([10, 3500, 3700, 7300], 7320, 3600, 120), [[0, 3600], [3600, 7200]]);
  t.deepEqual(finishedPeriods([7250], 7300, 3600, 120), []);
});

test('period journal renders, validates, and sorts partitions by number', (t) => {
  const usages = periodUsage([s('slappart10', 10, { cpuUsec: 5 }), s('slappart2', 10, { cpuUsec: 1 }), s('slappart2', 70, { cpuUsec: 3_600_000_001 })], new Map());
  t.deepEqual(usages.map((u) => u.partition), ['slappart2', 'slappart10']);
  const journal = periodJournal('COMP-1', 0, 3600, usages) as string;
  validateJournal(journal);
  t.regex(journal, /<start_date>1970-01-01 00:00:00<\/start_date>\s*<stop_date>1970-01-01 01:00:00<\/stop_date>\s*<reference>COMP-1<\/reference>/);
  t.regex(journal, /<resource>service_module\/cpu_load_percent<\/resource>\s*<title>[^<]*<\/title>\s*<reference>slappart2<\/reference>\s*<quantity>100<\/quantity>/);
  t.is(periodJournal('COMP-1', 0, 3600, []), null);
});

test('TioXML validation names what is wrong', (t) => {
  const ok = '<consumption><movement><resource>r</resource><quantity>1.5e3</quantity><price>0</price><VAT></VAT><category>a</category></movement></consumption>';
  t.is(parseConsumption(ok)[0]?.quantity, 1500);
  t.throws(() => parseConsumption('<consumption></consumption>'), { message: /expected <movement> \(missing\)/ });
  t.throws(() => parseConsumption(ok.replace('<quantity>1.5e3', '<quantity>lots')), { message: /quantity\[1\]: <quantity> is not a float/ });
  t.throws(() => parseConsumption(ok.replace('<VAT></VAT>', '')), { message: /expected <VAT>/ });
  t.throws(() => parseConsumption(ok.replace('<price>0</price>', '<price>0</price><price>1</price>')), { message: /expected <VAT>, found <price>/ });
  t.throws(() => parseConsumption(ok.replace('<quantity>1.5e3', '<quantity>NaN')), { message: /not a finite number/ });
  t.throws(() => parseConsumption('<!DOCTYPE x><consumption/>'), { message: /DOCTYPE/ });
  t.throws(() => validateJournal('<journal><transaction><start_date/></transaction></journal>'), { message: /attribute type is required/ });
  const files = partitionFilesJournal('COMP-1', 0, new Map([['slappart0', parseConsumption(ok.replace('<quantity>', '<reference>theirs</reference><quantity>'))]]));
  validateJournal(files);
  t.regex(files, /<reference>slappart0<\/reference>/);
  t.notRegex(files, /theirs/);
  t.regex(files, /<stop_date>1970-01-01 at 00:00:00<\/stop_date>/);
  t.is(formatQuantity(0.1 + 0.2), '0.3');
  t.is(formatQuantity(-0.0000001), '0');
});

const xmllintTest = existsSync('/usr/bin/xmllint') ? test : test.skip;
xmllintTest(`our XSDs (lib/xsd) agree with the TypeScript validation (xmllint)${existsSync('/usr/bin/xmllint') ? '' : ' [skipped: xmllint (libxml2-utils) not installed]'}`, (t) => {
  const dir = tempDir(t, 'slapos-xsd-');
  const check = (xsd: string, text: string) => {
    const file = path.join(dir, 'doc.xml');
    writeFileSync(file, text);
    try {
      execFileSync('xmllint', ['--noout', '--schema', path.join(repoRoot, 'lib', 'xsd', xsd), file], { stdio: 'pipe' });
      return true;
    } catch {
      return false;
    }
  };
  const journal = periodJournal('COMP-1', 0, 3600, periodUsage([s('slappart0', 10, { cpuUsec: 5, memoryBytes: 1 })], new Map())) as string;
  t.true(check('computer_consumption.xsd', journal));
  t.false(check('computer_consumption.xsd', journal.replace(/<currency><\/currency>/, '')));
  const consumption = '<consumption><movement><resource>r</resource><quantity>1</quantity><price>0</price><VAT/></movement></consumption>';
  t.true(check('partition_consumption.xsd', consumption));
  t.false(check('partition_consumption.xsd', consumption.replace('<quantity>1', '<quantity>x')));
});

test('retention lock as the reference: missing or ≤ 0 allowed; first attempt writes the date', (t) => {
  t.deepEqual(retention(null, null, 1000), { kind: 'allowed' });
  t.deepEqual(retention('0', null, 1000), { kind: 'allowed' });
  t.deepEqual(retention('1', null, 1000.7), { kind: 'locked', until: 1000 + 86400, writeDate: true });
  t.deepEqual(retention('1', '87400', 2000), { kind: 'locked', until: 87400, writeDate: false });
  t.deepEqual(retention('1', '87400', 87400), { kind: 'allowed' });
});

test('destruction decisions: retention first, then prerm started once, waited for, then destroy', (t) => {
  const base = { retention: { kind: 'allowed' } as const, prermScripts: [], waitList: null, states: new Map(), hasDestroyScript: true };
  t.deepEqual(decideDestruction(base), { kind: 'destroy', runDestroyScript: true });
  t.is(decideDestruction({ ...base, retention: { kind: 'locked', until: 5, writeDate: false } }).kind, 'locked');
  t.deepEqual(decideDestruction({ ...base, prermScripts: ['a'] }), { kind: 'start-prerm', scripts: ['a'] });
  const waiting = { ...base, prermScripts: ['a'], waitList: ['p-prerm:a', 'p-prerm:b'], states: new Map([['p-prerm:a', 'RUNNING' as const], ['p-prerm:b', 'EXITED' as const]]) };
  t.deepEqual(decideDestruction(waiting), { kind: 'wait-prerm', running: ['p-prerm:a'] });
  t.is(decideDestruction({ ...waiting, states: new Map() }).kind, 'destroy', 'unknown names are ignored, as the reference');
  t.true(isPartitionConf('slappart1.conf', 'slappart1'));
  t.true(isPartitionConf('slappart1-prerm.conf', 'slappart1'));
  t.false(isPartitionConf('slappart10.conf', 'slappart1'));
  const conf = prermConf({
    id: 'slappart1', path: '/srv/slappart1', uid: 1001, gid: 1002, user: 'slapuser1', home: '/srv/slappart1', launcher: '/l/slapos-launch', cgroupProcs: [],
  }, ['backup']);
  t.regex(conf, /^\[group:slappart1-prerm\]\nprograms=slappart1-prerm_backup\n/);
  t.regex(conf, /command = \/l\/slapos-launch --uid 1001 --gid 1002 --init-groups --chdir \/srv\/slappart1 --log \/srv\/slappart1\/\.slappart1-prerm_backup\.log .* -- \/srv\/slappart1\/etc\/prerm\/backup\n/);
  t.regex(conf, /stdout_logfile = AUTO\n/);
  t.notRegex(conf, /^(user|directory|stderr_logfile) ?=/m);
});

test('disk: walk order stalest first, repquota parsing, mount point of a path', (t) => {
  const cache = new Map([
    ['a', { partition: 'a', bytes: 1, at: 100, partial: false, method: 'walk' }],
    ['b', { partition: 'b', bytes: 1, at: 50, partial: false, method: 'walk' }],
    ['c', { partition: 'c', bytes: 1, at: 990, partial: false, method: 'walk' }],
  ]);
  t.deepEqual(walkOrder(['a', 'b', 'c', 'd'], cache, 1000, 500), ['d', 'b', 'a']);
  const repquota = `*** Report for user quotas on device /dev/vda1\nBlock grace time: 7days; Inode grace time: 7days\n` +
    `                        Block limits                File limits\nUser            used    soft    hard  grace    used  soft  hard  grace\n` +
    `----------------------------------------------------------------------\n#0        --  123456       0       0           1234     0     0\n#1001     +-   10000    5000   20000  6days      10     0     0\n`;
  t.deepEqual([...parseRepquota(repquota)], [[0, 123456], [1001, 10000]]);
  const mountinfo = '22 1 0:21 / / rw - ext4 /dev/vda1 rw\n30 22 0:30 / /srv rw - ext4 /dev/vdb rw\n31 22 0:31 / /srv/slap\\040os rw - tmpfs t rw\n';
  t.is(mountPointOf('/srv/slapos/p', mountinfo), '/srv');
  t.is(mountPointOf('/srv/slap os/p', mountinfo), '/srv/slap os');
  t.is(mountPointOf('/home', mountinfo), '/');
});

test('partitions from format\'s state or the configured naming, never from .slapos-resource', (t) => {
  const state = { partition_list: [
    { reference: 'slappart3', path: '/elsewhere', user: { name: 'slapuser3' }, tap: { name: 'slaptap3' } },
    { reference: '../etc', user: { name: 'root' } },
    { reference: 'slappart4' },
  ] };
  t.deepEqual(partitionsFromState(state as unknown as Dict, '/srv/slapgrid'), [{ id: 'slappart3', path: '/srv/slapgrid/slappart3', user: 'slapuser3', tap: 'slaptap3' }]);
  const naming = { partitionBaseName: 'slappart', userBaseName: 'slapuser', tapBaseName: 'slaptap' };
  t.deepEqual(partitionsFromNaming(['slappart0', 'slappart12', 'slappart01', 'slappartx', 'etc', 'var'], '/srv', naming), [
    { id: 'slappart0', path: '/srv/slappart0', user: 'slapuser0', tap: 'slaptap0' },
    { id: 'slappart12', path: '/srv/slappart12', user: 'slapuser12', tap: 'slaptap12' },
  ]);
});
