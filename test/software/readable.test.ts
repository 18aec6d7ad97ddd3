// A release given as a local path must be readable by the software user
// before anything is built: one line naming the directory in the way.
import test from 'ava';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { processSoftwareReleases } from '../../src/software/loop.js';
import { localReleasePath, permits, unreadableReason } from '../../src/software/readable.js';
import { urlHash } from '../../src/software/plan.js';
import { isRoot, tempDir } from '../helpers/system.js';
import { FakeSoftwareMaster } from './fake-link.js';
import { softwareNode } from './node.js';

const rootTest = isRoot ? test.serial : test.skip;

test('local release paths: absolute paths and file: URLs; not http', (t) => {
  t.is(localReleasePath('/opt/sr/software.cfg'), '/opt/sr/software.cfg');
  t.is(localReleasePath('file:///opt/sr/software.cfg'), '/opt/sr/software.cfg');
  t.is(localReleasePath('https://lab.example/software.cfg'), undefined);
  t.is(localReleasePath('sr/software.cfg'), undefined);
});

test('permission bits: owner, group, others; root reads everything', (t) => {
  const reader = { name: 'soft', uid: 1000, gids: [1000, 50] };
  t.true(permits({ uid: 1000, gid: 0, mode: 0o400 }, reader, 4));
  t.false(permits({ uid: 0, gid: 0, mode: 0o700 }, reader, 1));
  t.true(permits({ uid: 0, gid: 50, mode: 0o750 }, reader, 5));
  t.false(permits({ uid: 0, gid: 50, mode: 0o705 }, reader, 5), 'group bits apply to a group member, not the others bits');
  t.true(permits({ uid: 0, gid: 0, mode: 0o755 }, reader, 5));
  t.true(permits({ uid: 0, gid: 0, mode: 0o000 }, { name: 'root', uid: 0, gids: [0] }, 4));
});

test('the first directory in the way is named', (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o700);
  const file = path.join(dir, 'sr', 'software.cfg');
  mkdirSync(path.dirname(file));
  writeFileSync(file, '[buildout]\n');
  const nobody = { name: 'nobody', uid: 65534, gids: [65534] };
  t.is(unreadableReason(file, nobody), `${dir} is not traversable by nobody`);
  chmodSync(dir, 0o755);
  chmodSync(path.dirname(file), 0o711);
  t.is(unreadableReason(file, nobody), `${path.dirname(file)} is not readable by nobody`);
  chmodSync(path.dirname(file), 0o755);
  chmodSync(file, 0o600);
  t.is(unreadableReason(file, nobody), `${file} is not readable by nobody`);
  chmodSync(file, 0o644);
  t.is(unreadableReason(file, nobody), undefined);
  t.is(unreadableReason(path.join(dir, 'sr', 'nope.cfg'), nobody), `${path.join(dir, 'sr', 'nope.cfg')} does not exist`);
});

rootTest('node software: a release the software user cannot read fails in one line, before anything is built', async (t) => {
  const { dir, user, options } = softwareNode(t);
  const { softwareRoot } = options;
  const hidden = path.join(dir, 'root-only');
  mkdirSync(hidden, { mode: 0o700 });
  const release = path.join(hidden, 'software.cfg');
  writeFileSync(release, '[buildout]\nparts =\n');
  const master = new FakeSoftwareMaster([{ url: release, requestedState: 'available' }]);
  const result = await processSoftwareReleases(master, options);
  t.is(result.exitCode, 1);
  const message = master.errors.get(release) ?? '';
  t.is(message, `the software user cannot read the release: ${hidden} is not readable by ${user.name}; put it where ${user.name} can read it (for example a copy of examples/hello-http under /opt)`);
  t.notRegex(message, /\n/);
  t.false(existsSync(path.join(softwareRoot, urlHash(release))), 'nothing was built');
});

