// The hardware status reader's cheap paths (issue 20): network counters read
// from a sysfs-like tree without spawning, and the boot-long CPU facts taken
// from the cache file when its boot id is the current one.
import test from 'ava';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readHardwareStatus, readNetworkStats, type HostStatic, type PartitionTotals } from '../../src/accounting/hardware.js';
import { tempDir } from '../helpers/system.js';

const TOTALS: PartitionTotals = { count: 0, active: 0, cpu_seconds: 0, memory_bytes: 0, pids: 0, disk_bytes: 0, net_in_bytes: 0, net_out_bytes: 0 };

function fakeInterface(root: string, name: string, counters: Record<string, string>, operstate?: string): void {
  mkdirSync(path.join(root, name, 'statistics'), { recursive: true });
  for (const [file, value] of Object.entries(counters)) writeFileSync(path.join(root, name, 'statistics', file), `${value}\n`);
  if (operstate) writeFileSync(path.join(root, name, 'operstate'), `${operstate}\n`);
}

const full = (n: number) => ({ rx_bytes: String(n), tx_bytes: String(n + 1), rx_errors: '0', tx_errors: '2', rx_dropped: '3', tx_dropped: '0' });

test('readNetworkStats: counters and operstate per interface; an interface with a missing counter is left out', (t) => {
  const root = tempDir(t);
  fakeInterface(root, 'eth0', full(100), 'up');
  fakeInterface(root, 'slaptap0', full(7));
  fakeInterface(root, 'half0', { rx_bytes: '5' }, 'down');
  const stats = readNetworkStats(root).sort((a, b) => a.name.localeCompare(b.name));
  t.deepEqual(stats, [
    { name: 'eth0', operstate: 'up', rx_bytes: 100, tx_bytes: 101, rx_errors: 0, tx_errors: 2, rx_dropped: 3, tx_dropped: 0 },
    { name: 'slaptap0', operstate: null, rx_bytes: 7, tx_bytes: 8, rx_errors: 0, tx_errors: 2, rx_dropped: 3, tx_dropped: 0 },
  ]);
});

test('readHardwareStatus: CPU facts come from a cache of this boot, taps are hidden, a stale cache is replaced', async (t) => {
  const dir = tempDir(t);
  const net = path.join(dir, 'net');
  fakeInterface(net, 'eth0', full(1), 'up');
  fakeInterface(net, 'slaptap0', full(2), 'up');
  const cacheFile = path.join(dir, 'host-static.json');
  const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  const cached: HostStatic = { boot_id: boot, cpu: { model: 'cached model', vendor: 'v', cores: 77, physical_cores: 7, speed_ghz: 1.5 }, temperature_sensor: false };
  writeFileSync(cacheFile, JSON.stringify(cached));
  const status = await readHardwareStatus('COMP-1', TOTALS, (name) => name.startsWith('slaptap'), new Date(), { cacheFile, netRoot: net });
  t.like(status.cpu, { model: 'cached model', cores: 77, physical_cores: 7 });
  t.deepEqual(status.network.map((n) => n.name), ['eth0']);
  t.is(status.temperature, null);

  writeFileSync(cacheFile, JSON.stringify({ ...cached, boot_id: 'another-boot' }));
  const fresh = await readHardwareStatus('COMP-1', TOTALS, () => false, new Date(), { cacheFile, netRoot: net });
  t.not(fresh.cpu.model, 'cached model', 'probed again after a reboot');
  const rewritten = JSON.parse(readFileSync(cacheFile, 'utf8')) as HostStatic;
  t.is(rewritten.boot_id, boot);
  t.is(rewritten.cpu.cores, fresh.cpu.cores);
});
