// src/safe-fs against a planted tree: links in the last and in an
// intermediate component, FIFOs, sparse files, directories for files, a
// mount inside the tree. Both resolution paths are exercised: openat2 and
// the per-component walk used on kernels without it.
import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  chmodSync, closeSync, lstatSync, mkdirSync, openSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync, existsSync,
} from 'node:fs';
import path from 'node:path';
import {
  appendBeneath, chownBeneath, listBeneath, mkdirBeneath, readTextBeneath, removeBeneath, setForceWalk, statBeneath,
  UnsafePathError, unlinkBeneath, writeBeneath, writeIfChangedBeneath,
} from '../../src/safe-fs/index.js';
import { walkDiskUsage } from '../../src/accounting/disk.js';
import { createUser, isRoot, tempDir } from '../helpers/system.js';

interface Snapshot {
  hash: string;
  mode: number;
  uid: number;
  gid: number;
}

function snapshot(file: string): Snapshot {
  const st = lstatSync(file);
  const hash = st.isFile() ? createHash('sha256').update(readFileSync(file)).digest('hex') : 'dir';
  return { hash, mode: st.mode, uid: st.uid, gid: st.gid };
}

/** A root-only file and a root directory outside the tree, and the tree itself. */
function world(t: ExecutionContext) {
  const top = tempDir(t, 'slapos-safefs-');
  const secret = path.join(top, 'secret');
  writeFileSync(secret, 'root only\n', { mode: 0o600 });
  const rootDir = path.join(top, 'rootdir');
  mkdirSync(rootDir, { mode: 0o700 });
  writeFileSync(path.join(rootDir, 'keep'), 'keep\n');
  const tree = path.join(top, 'tree');
  mkdirSync(tree);
  mkdirSync(path.join(tree, 'var'));
  return { top, secret, rootDir, tree };
}

for (const walk of [false, true]) {
  const label = walk ? 'walk' : 'openat2';
  test.serial(`${label}: a link in the last or an intermediate component is refused for read, write, mkdir, chown`, (t) => {
    setForceWalk(walk);
    t.teardown(() => setForceWalk(false));
    const w = world(t);
    const before = [snapshot(w.secret), snapshot(w.rootDir), snapshot(path.join(w.rootDir, 'keep'))];
    symlinkSync(w.secret, path.join(w.tree, 'file-link'));
    symlinkSync(w.rootDir, path.join(w.tree, 'dir-link'));
    symlinkSync(w.rootDir, path.join(w.tree, 'var', 'xml_report'));

    const e1 = t.throws(() => readTextBeneath(w.tree, 'file-link'), { instanceOf: UnsafePathError });
    t.true(e1!.message.includes(path.join(w.tree, 'file-link')));
    t.throws(() => readTextBeneath(w.tree, 'dir-link/keep'), { instanceOf: UnsafePathError });
    t.throws(() => writeBeneath(w.tree, 'dir-link/keep', 'owned'), { instanceOf: UnsafePathError });
    t.throws(() => writeBeneath(w.tree, 'dir-link/new', 'owned'), { instanceOf: UnsafePathError });
    t.throws(() => mkdirBeneath(w.tree, 'var/xml_report', { mode: 0o750 }), { instanceOf: UnsafePathError });
    t.throws(() => mkdirBeneath(w.tree, 'dir-link/sub'), { instanceOf: UnsafePathError });
    t.throws(() => appendBeneath(w.tree, 'file-link', 'x'), { instanceOf: UnsafePathError });
    t.throws(() => appendBeneath(w.tree, 'dir-link/keep', 'x'), { instanceOf: UnsafePathError });
    t.throws(() => chownBeneath(w.tree, 'file-link', { uid: 0, gid: 0 }, 0o666), { instanceOf: UnsafePathError });
    t.throws(() => readTextBeneath(w.tree, '../secret'), { instanceOf: UnsafePathError });
    // writing over a link at the final name replaces the link, not the target
    writeBeneath(w.tree, 'file-link', 'mine');
    t.false(lstatSync(path.join(w.tree, 'file-link')).isSymbolicLink());
    t.deepEqual([snapshot(w.secret), snapshot(w.rootDir), snapshot(path.join(w.rootDir, 'keep'))], before);
  });

  test.serial(`${label}: a FIFO, a huge sparse file and a directory are refused without blocking`, (t) => {
    setForceWalk(walk);
    t.teardown(() => setForceWalk(false));
    const w = world(t);
    spawnSync('mkfifo', [path.join(w.tree, 'fifo')]);
    const big = path.join(w.tree, 'big');
    closeSync(openSync(big, 'w'));
    truncateSync(big, 1024 ** 3);
    mkdirSync(path.join(w.tree, 'dir'));
    const started = Date.now();
    t.throws(() => readTextBeneath(w.tree, 'fifo'), { instanceOf: UnsafePathError, message: /FIFO/ });
    t.throws(() => readTextBeneath(w.tree, 'big'), { instanceOf: UnsafePathError, message: /larger/ });
    t.is(readTextBeneath(w.tree, 'big', { maxBytes: 4, tail: true }), '\0\0\0\0');
    t.throws(() => readTextBeneath(w.tree, 'dir'), { instanceOf: UnsafePathError });
    t.throws(() => appendBeneath(w.tree, 'fifo', 'x'), { instanceOf: UnsafePathError });
    t.true(Date.now() - started < 5_000);
    t.is(readTextBeneath(w.tree, 'absent'), undefined);
    t.is(statBeneath(w.tree, 'absent'), undefined);
    t.true(statBeneath(w.tree, 'fifo')!.isFIFO());
  });
}

test('write is atomic, owned and moded by descriptor; writeIfChanged skips identical content', (t) => {
  const w = world(t);
  writeBeneath(w.tree, 'var/state.json', '{"a":1}\n', { mode: 0o640, owner: { uid: 0, gid: 0 } });
  t.is(readFileSync(path.join(w.tree, 'var/state.json'), 'utf8'), '{"a":1}\n');
  t.is(statSync(path.join(w.tree, 'var/state.json')).mode & 0o7777, 0o640);
  t.false(writeIfChangedBeneath(w.tree, 'var/state.json', '{"a":1}\n', { mode: 0o640 }));
  t.true(writeIfChangedBeneath(w.tree, 'var/state.json', '{"a":2}\n', { mode: 0o640 }));
  t.deepEqual(listBeneath(w.tree, 'var')!.map((e) => e.name), ['state.json']); // no temp left
  t.is(appendBeneath(w.tree, 'var/log', 'one\n'), 4);
  t.is(appendBeneath(w.tree, 'var/log', 'two\n'), 8);
  t.true(unlinkBeneath(w.tree, 'var/log'));
  t.false(unlinkBeneath(w.tree, 'var/log'));
});

test('a temp file of a killed write is removed by the next write of that name; a live writer\'s, other names and links are left', async (t) => {
  const w = world(t);
  mkdirSync(path.join(w.tree, 'var'), { recursive: true });
  // A pid that no longer exists: a child that has exited and been reaped.
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
  const names = {
    dead: `.state.json.${dead}.0123abcd.tmp`, live: `.state.json.${process.ppid}.0123abcd.tmp`,
    other: `.other.json.${dead}.0123abcd.tmp`, link: `.state.json.${dead}.4567abcd.tmp`,
    deadMany: `.many.json.${dead}.89abcdef.tmp`,
  };
  for (const name of [names.dead, names.live, names.other, names.deadMany]) writeFileSync(path.join(w.tree, 'var', name), 'partial');
  symlinkSync('/etc/passwd', path.join(w.tree, 'var', names.link));
  writeBeneath(w.tree, 'var/state.json', '{}\n');
  const left = () => listBeneath(w.tree, 'var')!.map((e) => e.name).sort();
  t.deepEqual(left(), [names.link, names.live, names.other, names.deadMany, 'state.json'].sort());
  const { writeManyBeneath } = await import('../../src/safe-fs/index.js');
  await writeManyBeneath([{ base: w.tree, rel: 'var/many.json', content: '{}\n', mode: 0o644 }]);
  t.deepEqual(left(), [names.link, names.live, names.other, 'many.json', 'state.json'].sort());
  t.true(lstatSync(path.join(w.tree, 'var', names.link)).isSymbolicLink());
});

(isRoot ? test : test.skip)(`mkdir chowns only what it created, by descriptor${isRoot ? '' : ' (skipped: needs root)'}`, (t) => {
  const w = world(t);
  const user = createUser(t);
  chmodSync(w.tree, 0o755);
  const created = mkdirBeneath(w.tree, 'var/xml_report/sub', { mode: 0o750, owner: user });
  t.deepEqual(created, ['var/xml_report', 'var/xml_report/sub']);
  t.is(statSync(path.join(w.tree, 'var')).uid, 0);
  t.is(statSync(path.join(w.tree, 'var/xml_report')).uid, user.uid);
  t.is(statSync(path.join(w.tree, 'var/xml_report/sub')).mode & 0o777, 0o750);
  t.deepEqual(mkdirBeneath(w.tree, 'var/xml_report/sub', { owner: user }), []);
});

test('remove never follows a link out of the tree and never crosses a mount point', (t) => {
  const w = world(t);
  const before = [snapshot(w.secret), snapshot(w.rootDir), snapshot(path.join(w.rootDir, 'keep'))];
  const victim = path.join(w.tree, 'victim');
  mkdirSync(path.join(victim, 'deep', 'er'), { recursive: true });
  symlinkSync(w.rootDir, path.join(victim, 'deep', 'dir-link'));
  symlinkSync(w.secret, path.join(victim, 'file-link'));
  spawnSync('mkfifo', [path.join(victim, 'deep', 'fifo')]);
  writeFileSync(path.join(victim, 'deep', 'er', 'f'), 'x');
  let mounted = false;
  if (isRoot) {
    const mnt = path.join(victim, 'deep', 'mnt');
    mkdirSync(mnt);
    mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'slt-safefs', mnt]).status === 0;
    if (mounted) {
      t.teardown(() => {
        spawnSync('umount', [mnt]);
      });
      writeFileSync(path.join(mnt, 'data'), 'on another mount');
    }
  }
  // an intermediate link in the removed path itself is refused
  symlinkSync(w.rootDir, path.join(w.tree, 'via'));
  t.throws(() => removeBeneath(w.tree, 'via/keep'), { instanceOf: UnsafePathError });
  const skipped = removeBeneath(w.tree, 'victim');
  t.deepEqual([snapshot(w.secret), snapshot(w.rootDir), snapshot(path.join(w.rootDir, 'keep'))], before);
  if (mounted) {
    t.deepEqual(skipped, [path.join(victim, 'deep', 'mnt')]);
    t.is(readFileSync(path.join(victim, 'deep', 'mnt', 'data'), 'utf8'), 'on another mount');
    t.false(existsSync(path.join(victim, 'deep', 'er')));
  } else {
    t.log('not root or no tmpfs mount: mount-point crossing not exercised');
    t.deepEqual(skipped, []);
    t.false(existsSync(victim));
  }
  // removing a link removes the name only
  t.deepEqual(removeBeneath(w.tree, 'via'), []);
  t.true(existsSync(path.join(w.rootDir, 'keep')));
});

test('the disk usage walk of a partition never enters a link', (t) => {
  const w = world(t);
  writeFileSync(path.join(w.rootDir, 'big'), Buffer.alloc(4 << 20, 1));
  writeFileSync(path.join(w.tree, 'var', 'own'), Buffer.alloc(1 << 20, 1));
  symlinkSync(w.rootDir, path.join(w.tree, 'var', 'elsewhere'));
  mkdirSync(path.join(w.tree, 'deep', 'er'), { recursive: true });
  writeFileSync(path.join(w.tree, 'deep', 'er', 'f'), Buffer.alloc(1 << 20, 1));
  const result = walkDiskUsage(w.tree, 10_000, Date.now() + 10_000);
  t.false(result.partial);
  t.true(result.bytes >= 2 << 20, `${result.bytes}`);
  t.true(result.bytes < 3 << 20, `${result.bytes}: the 4 MiB behind the link are not counted`);
});
