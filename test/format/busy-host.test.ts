// Format on a busy host (issue 20, "Also"): when another tool takes the ids
// format planned, the message names what took them, and the re-plans are
// spaced by a growing, randomised backoff.
import test from 'ava';
import { idTakenBy } from '../../src/format/apply.js';
import { userDbBackoffMs } from '../../src/format/run.js';
import { parseDbFile, type UserDb } from '../../src/users/db.js';

const db = (passwd: string, group: string): UserDb => ({
  passwd: parseDbFile(passwd), group: parseDbFile(group), shadow: parseDbFile(''), gshadow: parseDbFile(''),
});

test('idTakenBy names the user and the group now holding the planned ids', (t) => {
  const d = db('root:x:0:0:root:/root:/bin/bash\nci-runner:x:1005:1007::/home/ci:/bin/sh\n', 'root:x:0:\nci-group:x:1006:\n');
  t.is(idTakenBy(d, { uid: 1005, gid: 1006 }), 'uid 1005 is now user ci-runner, gid 1006 is now group ci-group, added by another tool');
  t.is(idTakenBy(d, { uid: 1005, gid: 2000 }), 'uid 1005 is now user ci-runner, added by another tool');
  t.is(idTakenBy(d, { uid: 3000, gid: 3000 }), 'planned uid 3000 / gid 3000 no longer free');
});

test('userDbBackoffMs doubles per attempt, within ±50 % jitter', (t) => {
  t.is(userDbBackoffMs(1, () => 0.5), 200);
  t.is(userDbBackoffMs(2, () => 0.5), 400);
  t.is(userDbBackoffMs(5, () => 0.5), 3200);
  t.is(userDbBackoffMs(3, () => 0), 400);
  t.is(userDbBackoffMs(3, () => 0.999), 1199);
});
