// Every process of a partition user lands in the partition's cgroup.
import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { attachPartitionProcesses, realUid } from '../../src/cgroup/attach.js';
import { CgroupTree } from '../../src/cgroup/group.js';
import { detectLayout } from '../../src/cgroup/layout.js';
import { createUser, isRoot, testName } from '../helpers/system.js';

const rootOnly = isRoot ? test.serial : test.skip;

test('the real uid is read from /proc/<pid>/status', (t) => {
  t.is(realUid('Name:\tsleep\nUid:\t1001\t1001\t1001\t1001\nGid:\t5\n'), 1001);
  t.is(realUid('Name:\tx\n'), undefined);
});

rootOnly('processes of a partition user are moved into its group, once; others are left alone', async (t) => {
  const user = createUser(t);
  const other = createUser(t);
  const tree = new CgroupTree(detectLayout(), testName('slapos-test-'));
  tree.create('slappart0');
  const mine = spawn('sleep', ['30'], { uid: user.uid, gid: user.gid, stdio: 'ignore' });
  const theirs = spawn('sleep', ['30'], { uid: other.uid, gid: other.gid, stdio: 'ignore' });
  t.teardown(async () => {
    for (const child of [mine, theirs]) if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    for (let i = 0; i < 100; i++) {
      try {
        tree.remove('slappart0');
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    tree.removeParent();
  });
  await Promise.all([once(mine, 'spawn'), once(theirs, 'spawn')]);
  const warnings: string[] = [];
  const partitions = [{ id: 'slappart0', uid: user.uid }];
  t.is(attachPartitionProcesses(tree, partitions, (m) => warnings.push(m)), 1);
  t.deepEqual(tree.processes('slappart0'), [mine.pid]);
  t.is(attachPartitionProcesses(tree, partitions, (m) => warnings.push(m)), 0, 'already there: nothing to do');
  t.deepEqual(warnings, []);
  // A partition whose group does not exist is skipped, not an error.
  t.is(attachPartitionProcesses(tree, [{ id: 'slappart9', uid: other.uid }], (m) => warnings.push(m)), 0);
});
