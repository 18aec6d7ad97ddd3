// `slapos proxy start --local-software-release-root`: a master run with a new
// root rebases the local software paths it holds (software rows and the
// partitions' software_release), after a private backup; URLs stay as they are.
import test from 'ava';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SlapClient } from '../../src/slap/client.js';
import { tempDir } from '../helpers/master.js';
import { freePort, startProxy, waitListening } from '../helpers/proxy-process.js';

test('a moved release root rebases the stored paths under it, once, after a backup', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const cfg = path.join(dir, 'slapos.cfg');
  const db = path.join(dir, 'proxy.db');
  writeFileSync(cfg, `[slapos]\ncomputer_id = COMP-1\nmaster_url = http://127.0.0.1:${port}\n` +
    `[slapproxy]\nhost = 127.0.0.1\nport = ${port}\ndatabase_uri = ${db}\n`);
  const url = `http://127.0.0.1:${port}/`;
  const [oldRoot, newRoot] = [path.join(dir, 'old'), path.join(dir, 'new')];
  for (const root of [oldRoot, newRoot]) {
    mkdirSync(path.join(root, 'sr'), { recursive: true });
    writeFileSync(path.join(root, 'sr', 'software.cfg'), '[buildout]\n');
  }
  const local = path.join(oldRoot, 'sr', 'software.cfg');
  const remote = 'https://lab.example/sr/software.cfg';

  const run = async (root: string, work: (client: SlapClient) => Promise<void>) => {
    const child = startProxy(t, cfg, ['--local-software-release-root', root]);
    await waitListening(child, url);
    const client = new SlapClient(url);
    try {
      await work(client);
    } finally {
      await client.close();
      child.kill('SIGTERM');
      await child;
    }
    return child;
  };
  await run(oldRoot, async (client) => {
    await client.loadComputerConfigurationFromXML({ reference: 'COMP-1', partition_list: [{ reference: 'slappart0' }, { reference: 'slappart1' }] });
    await client.supplySupply(local, 'COMP-1');
    await client.supplySupply(remote, 'COMP-1');
    await client.requestComputerPartition(local, 'inst0');
  });
  t.deepEqual(readdirSync(dir).filter((f) => f.includes('-backup-')), [], 'the first root (from /) rebases nothing');

  const moved = await run(newRoot, async (client) => {
    const info = await client.getFullComputerInformation('COMP-1');
    t.deepEqual(info.softwareReleases.map((s) => s.url).sort(), [path.join(newRoot, 'sr', 'software.cfg'), remote].sort());
    t.deepEqual(info.partitions.filter((p) => p.softwareRelease).map((p) => p.softwareRelease?.url), [path.join(newRoot, 'sr', 'software.cfg')]);
  });
  const result = await moved;
  t.regex(String(result.all), /local software release root changed/);
  const backups = readdirSync(dir).filter((f) => f.includes('-backup-'));
  t.is(backups.length, 1);
  t.is(statSync(path.join(dir, backups[0]!)).mode & 0o777, 0o600, 'the backup holds keys: private');

  // The same root again: nothing to do, no new backup.
  await run(newRoot, async (client) => {
    const info = await client.getFullComputerInformation('COMP-1');
    t.true(info.softwareReleases.some((s) => s.url === path.join(newRoot, 'sr', 'software.cfg')));
  });
  t.is(readdirSync(dir).filter((f) => f.includes('-backup-')).length, 1);
});

test('a relative or bad root is refused before the master serves', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\ncomputer_id = COMP-1\n[slapproxy]\nhost = 127.0.0.1\nport = ${port}\ndatabase_uri = ${path.join(dir, 'proxy.db')}\n` +
    'local_software_release_root = relative/dir\n');
  const result = await startProxy(t, cfg);
  t.is(result.exitCode, 1);
  t.regex(String(result.all), /local_software_release_root/);
});
