// supervisord.conf is written as one commit (directories, temp file, rename):
// killed at each of its boundaries, the next run leaves the same files as an
// uninterrupted run, also when that run has nothing to change.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { SUPERVISORD_CONFIG_KILL_POINTS, writeSupervisordConfiguration } from '../../src/supervisor/daemon.js';
import { repoRoot, tempDir } from '../helpers/system.js';

const module = path.join(repoRoot, 'dist', 'src', 'supervisor', 'daemon.js');

function killedWrite(instanceRoot: string, watchdogCommand: string, point: string) {
  const script = `const { writeSupervisordConfiguration } = await import(${JSON.stringify(module)});
    writeSupervisordConfiguration(process.argv[1], { watchdogCommand: process.argv[2] });`;
  return spawnSync(process.execPath, ['--input-type=module', '-e', script, instanceRoot, watchdogCommand], {
    env: { PATH: process.env.PATH ?? '', SLAPOS_TEST_KILL_AT: point }, encoding: 'utf8', timeout: 30_000,
  });
}

const etcFiles = (root: string) => readdirSync(path.join(root, 'etc')).sort();

test('killed at every boundary of writing supervisord.conf: the next run converges, also with nothing to change', (t) => {
  const reference = tempDir(t);
  const paths = writeSupervisordConfiguration(reference, { watchdogCommand: '/bin/true new' });
  const expectedIn = (root: string) => readFileSync(paths.config, 'utf8').replaceAll(reference, root);
  for (const point of SUPERVISORD_CONFIG_KILL_POINTS) {
    for (const before of ['none', 'old', 'same'] as const) {
      // none: first write; old: an older configuration is there; same: the one the killed run wanted was already there.
      const root = tempDir(t);
      if (before !== 'none') writeSupervisordConfiguration(root, { watchdogCommand: before === 'old' ? '/bin/true old' : '/bin/true new' });
      const child = killedWrite(root, '/bin/true new', point);
      const reached = !(before === 'same' && point !== 'supervisord-config:dirs'); // nothing to write: no temp, no rename
      t.is(child.signal, reached ? 'SIGKILL' : null, `${point} (${before}): ${child.stderr}`);
      const config = path.join(root, 'etc', 'supervisord.conf');
      const expected = expectedIn(root);
      // What the kill left is the old or the new configuration, never a part of one.
      if (existsSync(config)) t.true(readFileSync(config, 'utf8') === expected || readFileSync(config, 'utf8').includes('/bin/true old'), `${point} (${before})`);
      writeSupervisordConfiguration(root, { watchdogCommand: '/bin/true new' });
      t.is(readFileSync(config, 'utf8'), expected, `${point} (${before}): same configuration as an uninterrupted run`);
      t.is(statSync(config).mode & 0o777, 0o600, `${point} (${before})`);
      t.deepEqual(etcFiles(root), etcFiles(reference), `${point} (${before}): no temp file left`);
    }
  }
});
