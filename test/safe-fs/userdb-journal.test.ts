// The user database commit is one journaled unit: a run SIGKILLed at the
// rename of "passwd+" or "gshadow+" (after group was renamed) is completed by
// the next run, so that no user ends up with a uid different from its gid.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseLoginDefs, planUsers, type UserDb } from '../../src/users/db.js';
import { readUserDb, USER_DB_JOURNAL, withLockedUserDb } from '../../src/users/apply.js';
import { repoRoot, tempDir } from '../helpers/system.js';

const ranges = () => parseLoginDefs(readFileSync('/etc/login.defs', 'utf8'));

function wanted(home: string) {
  return [
    { name: 'zzjsoft', home, shell: '/bin/sh', groups: [] },
    ...[0, 1, 2].map((i) => ({ name: `zzjuser${i}`, home: path.join(home, `p${i}`), shell: '/bin/sh', groups: ['zzjsoft'] })),
  ];
}

/** uid = gid for each of our users, and each has its group with that gid. */
function consistent(db: UserDb): string[] {
  const problems: string[] = [];
  const groups = new Map(db.group.lines.map((l) => [l[0], Number(l[2])]));
  for (const l of db.passwd.lines.filter((line) => (line[0] ?? '').startsWith('zzj'))) {
    if (l[2] !== l[3]) problems.push(`${l[0]}: uid ${l[2]} gid ${l[3]}`);
    if (groups.get(l[0]) !== Number(l[3])) problems.push(`${l[0]}: group gid ${groups.get(l[0])} vs ${l[3]}`);
  }
  return problems;
}

for (const killAt of ['passwd', 'gshadow']) {
  test(`killed at the rename of ${killAt}+: the journal is replayed, ids stay paired`, (t) => {
    const etc = tempDir(t);
    for (const f of ['passwd', 'group', 'shadow', 'gshadow']) copyFileSync(path.join('/etc', f), path.join(etc, f));
    const home = tempDir(t);
    mkdirSync(path.join(home, 'p0'));
    const location = { etcDir: etc, systemLock: false };
    const apply = path.join(repoRoot, 'dist', 'src', 'users', 'apply.js');
    const db = path.join(repoRoot, 'dist', 'src', 'users', 'db.js');
    const script = `
      const { withLockedUserDb } = await import(${JSON.stringify(apply)});
      const { planUsers, parseLoginDefs } = await import(${JSON.stringify(db)});
      const { readFileSync } = await import('node:fs');
      const ranges = parseLoginDefs(readFileSync('/etc/login.defs', 'utf8'));
      withLockedUserDb(${JSON.stringify(location)}, (d) => planUsers(d, ${JSON.stringify(wanted(home))}, [], ranges, 20000));
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { PATH: process.env.PATH ?? '', SLAPOS_USERDB_TEST_KILL_AT: killAt }, encoding: 'utf8', timeout: 30_000,
    });
    t.is(child.signal, 'SIGKILL', child.stderr);
    t.true(existsSync(path.join(etc, USER_DB_JOURNAL)), 'the interrupted commit left its journal');
    // Readers already see the completed state.
    t.deepEqual(consistent(readUserDb(location)), []);
    // The next run replays, then finds nothing to do.
    const plan = withLockedUserDb(location, (d) => planUsers(d, wanted(home), [], ranges(), 20000));
    t.deepEqual(plan.changes, {});
    t.false(existsSync(path.join(etc, USER_DB_JOURNAL)));
    const after = readUserDb(location);
    t.deepEqual(consistent(after), []);
    t.is(after.passwd.lines.filter((l) => (l[0] ?? '').startsWith('zzjuser')).length, 3);
    t.is(after.gshadow.lines.filter((l) => (l[0] ?? '').startsWith('zzjuser')).length, 3);
  });
}
