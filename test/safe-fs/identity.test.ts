// A partition's identity comes from root-owned state only: format's state
// file or the configured naming, then the user database, and the partition
// directory must be owned by that user. What the partition writes in its
// .slapos-resource changes nothing.
import test from 'ava';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { discoverPartitions } from '../../src/accounting/partitions.js';
import { isRoot, tempDir } from '../helpers/system.js';
import { partitionUser } from '../promise/helpers.js';

const naming = { partitionBaseName: 'slappart', userBaseName: 'slapuser', tapBaseName: 'slaptap' };

(isRoot ? test : test.skip)(`naming and user database, not .slapos-resource; a directory not owned by its user runs nothing${isRoot ? '' : ' (skipped: needs root to chown)'}`, async (t) => {
  const dir = tempDir(t);
  const instanceRoot = path.join(dir, 'srv');
  const nobody = partitionUser();
  for (const id of ['slappart0', 'slappart1', 'etc']) mkdirSync(path.join(instanceRoot, id), { recursive: true });
  chownSync(path.join(instanceRoot, 'slappart0'), nobody.uid, nobody.gid);
  // slappart0 claims to be root's and to own the loopback.
  writeFileSync(path.join(instanceRoot, 'slappart0', '.slapos-resource'), JSON.stringify({ reference: 'slappart0', user: { name: 'root' }, tap: { name: 'lo' } }));
  const passwd = path.join(dir, 'passwd');
  writeFileSync(passwd, `root:x:0:0::/root:/bin/sh\nslapuser0:x:${nobody.uid}:${nobody.gid}::/h:/bin/sh\nslapuser1:x:54321:54321::/h:/bin/sh\n`);
  const warnings: string[] = [];
  const found = await discoverPartitions({ instanceRoot, naming }, (m) => warnings.push(m), passwd);
  t.deepEqual(found.map((p) => [p.id, p.user, p.uid, p.tap]), [
    ['slappart0', 'slapuser0', nobody.uid, 'slaptap0'],
    ['slappart1', 'slapuser1', null, 'slaptap1'],
  ]);
  t.true(warnings.some((w) => w.includes('slappart1') && w.includes('not by its user slapuser1')));

  // Format's state file, when there is one, is the source.
  const state = path.join(dir, 'slapos.json');
  writeFileSync(state, JSON.stringify({ partition_list: [{ reference: 'slappart0', user: { name: 'slapuser0' }, tap: { name: 'sltap0' } }] }));
  const fromState = await discoverPartitions({ instanceRoot, naming, formatState: { xml: path.join(dir, 'absent.xml'), json: state } }, () => {}, passwd);
  t.deepEqual(fromState.map((p) => [p.id, p.uid, p.tap]), [['slappart0', nobody.uid, 'sltap0']]);
});
