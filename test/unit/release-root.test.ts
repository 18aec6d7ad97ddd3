// local_software_release_root (src/master/release-root.ts): which root changes
// rebase, and how one URL is rebased (the reference's rules, slap-protocol.md §5).
import test from 'ava';
import { rebasedUrl, rootChange } from '../../src/master/release-root.js';

test('a root inside or around the old one rebases nothing; a sibling rebases', (t) => {
  t.is(rootChange('/srv/a', '/srv/a'), 'same');
  t.is(rootChange('/', '/srv/a'), 'subpath');
  t.is(rootChange('/srv/a', '/srv/a/b'), 'subpath');
  t.is(rootChange('/srv/a/b', '/srv/a'), 'superpath');
  t.is(rootChange('/srv/a', '/'), 'superpath');
  t.is(rootChange('/srv/a', '/srv/b'), 'rebase');
  t.is(rootChange('/srv/a', '/opt/x/y'), 'rebase');
});

test('only local paths under the old root move, unless the file is only at the old place', (t) => {
  const files = new Set(['/old/sr/kept.cfg', '/new/sr/both.cfg', '/old/sr/both.cfg']);
  const isFile = (f: string) => files.has(f);
  t.is(rebasedUrl('/old/sr/software.cfg', '/old', '/new', isFile), '/new/sr/software.cfg', 'neither exists: moved');
  t.is(rebasedUrl('/old/sr/both.cfg', '/old', '/new', isFile), '/new/sr/both.cfg');
  t.is(rebasedUrl('/old/sr/kept.cfg', '/old', '/new', isFile), '/old/sr/kept.cfg', 'only the old file exists');
  t.is(rebasedUrl('/elsewhere/software.cfg', '/old', '/new', isFile), '/elsewhere/software.cfg');
  t.is(rebasedUrl('/older/software.cfg', '/old', '/new', isFile), '/older/software.cfg', 'a prefix is not a parent');
  t.is(rebasedUrl('https://lab.example/sr/software.cfg', '/old', '/new', isFile), 'https://lab.example/sr/software.cfg');
  t.is(rebasedUrl('file:///old/sr/software.cfg', '/old', '/new', isFile), 'file:///old/sr/software.cfg', 'a URL with a scheme is not a path');
  t.is(rebasedUrl('', '/old', '/new', isFile), '');
});
