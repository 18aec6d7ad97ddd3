// The user database commit is one journaled unit. A run SIGKILLed at every
// step boundary of it (USER_DB_KILL_POINTS) is brought by the next run to the
// same files as an uninterrupted run, even when that next run's plan is
// empty; and an administrator's change made in between (useradd, usermod) is
// never overwritten: the journal is completed only onto the files it was
// made from, rolled back when none of its writes survived, refused otherwise.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseLoginDefs, planUsers, type UserDb } from '../../src/users/db.js';
import { readUserDb, readUserDbAsRecovered, recoverUserDb, USER_DB_JOURNAL, USER_DB_KILL_POINTS, UserDbJournalError, withLockedUserDb } from '../../src/users/apply.js';
import { repoRoot, tempDir } from '../helpers/system.js';

const FILES = ['passwd', 'group', 'shadow', 'gshadow'] as const;
const ranges = () => parseLoginDefs(readFileSync('/etc/login.defs', 'utf8'));

function wanted(home: string) {
  return [
    { name: 'zzjsoft', home, shell: '/bin/sh', groups: [] },
    ...[0, 1, 2].map((i) => ({ name: `zzjuser${i}`, home: path.join(home, `p${i}`), shell: '/bin/sh', groups: ['zzjsoft'] })),
  ];
}

// The host's files, read once: tests beside this one add and remove users on
// the machine, and every copy below must start from the same database.
const hostFiles = Object.fromEntries([...FILES, 'login.defs'].map((f) => [f, readFileSync(path.join('/etc', f))]));

/** A copy of the host's user database under <root>/etc (the layout `useradd -P <root>` expects). */
function copyEtc(t: ExecutionContext): { root: string; etc: string } {
  const root = tempDir(t);
  const etc = path.join(root, 'etc');
  mkdirSync(etc);
  for (const [f, content] of Object.entries(hostFiles)) writeFileSync(path.join(etc, f), content, { mode: f === 'shadow' || f === 'gshadow' ? 0o640 : 0o644 });
  return { root, etc };
}

const snapshot = (etc: string) => Object.fromEntries(FILES.map((f) => [f, readFileSync(path.join(etc, f), 'utf8')]));

/** Files a killed writer may leave: journal, temps, locks. */
const leftovers = (etc: string) => readdirSync(etc).filter((n) => n === USER_DB_JOURNAL || /[+]$|\.lock$|\.[0-9]+$|journal\+$/.test(n));

/** uid = gid for each of our users, and each has its group with that gid. */
function consistent(db: UserDb): string[] {
  const problems: string[] = [];
  const groups = new Map(db.group.lines.map((l) => [l[0], Number(l[2])]));
  const ours = db.passwd.lines.filter((line) => (line[0] ?? '').startsWith('zzj') && line[0] !== 'zzjadmin');
  if (ours.length !== 4) problems.push(`${ours.length} of our 4 users in passwd`);
  for (const l of ours) {
    if (l[2] !== l[3]) problems.push(`${l[0]}: uid ${l[2]} gid ${l[3]}`);
    if (groups.get(l[0]) !== Number(l[3])) problems.push(`${l[0]}: group gid ${groups.get(l[0])} vs ${l[3]}`);
  }
  for (const f of ['shadow', 'gshadow'] as const) {
    const n = db[f].lines.filter((l) => (l[0] ?? '').startsWith('zzj') && l[0] !== 'zzjadmin').length;
    if (n !== 4) problems.push(`${n} of our 4 entries in ${f}`);
  }
  return problems;
}

/** One commit in a child process that SIGKILLs itself at `point`. */
function killedRun(etc: string, home: string, point: string) {
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
  return spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { PATH: process.env.PATH ?? '', SLAPOS_TEST_KILL_AT: point }, encoding: 'utf8', timeout: 30_000,
  });
}

/** What format does on its next run: recover before reading, then plan (and commit when the plan changes something). */
function nextRun(etc: string, home: string) {
  const location = { etcDir: etc, systemLock: false };
  const repaired = recoverUserDb(location);
  const beforePlan = planUsers(readUserDb(location), wanted(home), [], ranges(), 20000);
  const plan = withLockedUserDb(location, (d) => planUsers(d, wanted(home), [], ranges(), 20000));
  return { repaired, emptyPlan: Object.keys(beforePlan.changes).length === 0, plan };
}

test('killed at every boundary of the user database commit: the next run converges to the uninterrupted result', (t) => {
  const home = tempDir(t);
  const reference = copyEtc(t);
  withLockedUserDb({ etcDir: reference.etc, systemLock: false }, (d) => planUsers(d, wanted(home), [], ranges(), 20000));
  const expected = snapshot(reference.etc);
  t.deepEqual(consistent(readUserDb({ etcDir: reference.etc, systemLock: false })), []);

  for (const point of USER_DB_KILL_POINTS) {
    const { etc } = copyEtc(t);
    const child = killedRun(etc, home, point);
    t.is(child.signal, 'SIGKILL', `${point}: ${child.stderr}`);
    const location = { etcDir: etc, systemLock: false };
    // A dry run already sees the completed state and says what it would repair, changing nothing.
    const before = snapshot(etc);
    const wouldRepair = recoverUserDb(location, true);
    t.deepEqual(snapshot(etc), before, `${point}: the dry run changed nothing`);
    if (existsSync(path.join(etc, USER_DB_JOURNAL))) {
      t.true(wouldRepair.some((r) => r.includes('complete the user database commit')), `${point}: ${wouldRepair.join('; ')}`);
      t.deepEqual(consistent(readUserDbAsRecovered(location)), [], point);
    }
    const { repaired, emptyPlan, plan } = nextRun(etc, home);
    t.deepEqual(snapshot(etc), expected, `${point}: same files as the uninterrupted run`);
    t.deepEqual(leftovers(etc), [], `${point}: nothing left behind`);
    // Once the journal is in place, the next run's plan is empty: the recovery alone completes the commit.
    if (point !== 'userdb:journal-temp') {
      t.true(emptyPlan, `${point}: empty plan after recovery`);
      t.deepEqual(plan.changes, {}, `${point}: recovery left nothing for the locked run to do`);
    }
    t.true(repaired.length > 0 || point === 'userdb:journal-removed', `${point}: says what it repaired`);
  }
});

test('a useradd after the kill is kept: the journal is rolled back or completed, never written over it', (t) => {
  const home = tempDir(t);
  for (const point of USER_DB_KILL_POINTS) {
    const { root, etc } = copyEtc(t);
    t.is(killedRun(etc, home, point).signal, 'SIGKILL', point);
    // The administrator adds a user with shadow's own tool (which clears the dead process's locks itself).
    const useradd = spawnSync('useradd', ['-P', root, 'zzjadmin'], { encoding: 'utf8' });
    t.is(useradd.status, 0, `${point}: ${useradd.stderr}`);
    const location = { etcDir: etc, systemLock: false };
    nextRun(etc, home);
    const db = readUserDb(location);
    t.deepEqual(consistent(db), [], point);
    t.true(db.passwd.lines.some((l) => l[0] === 'zzjadmin'), `${point}: the administrator's user is kept`);
    t.true(db.group.lines.some((l) => l[0] === 'zzjadmin'), `${point}: the administrator's group is kept`);
    t.deepEqual(leftovers(etc), [], point);
  }
});

test('a journal whose files changed after some were written is refused, names them, and overwrites nothing', (t) => {
  const home = tempDir(t);
  const { root, etc } = copyEtc(t);
  t.is(killedRun(etc, home, 'userdb:renamed:group').signal, 'SIGKILL');
  // Only passwd changes (usermod -c): group is still as the journal wrote it, passwd is neither its base nor its new content.
  const usermod = spawnSync('usermod', ['-P', root, '-c', 'changed by the administrator', 'root'], { encoding: 'utf8' });
  t.is(usermod.status, 0, usermod.stderr);
  const before = snapshot(etc);
  const location = { etcDir: etc, systemLock: false };
  for (const attempt of [() => recoverUserDb(location, true), () => recoverUserDb(location), () => readUserDbAsRecovered(location)]) {
    const error = t.throws(attempt, { instanceOf: UserDbJournalError });
    t.regex(error?.message ?? '', new RegExp(`${path.join(etc, 'passwd')}.*changed since.*remove ${path.join(etc, USER_DB_JOURNAL).replace(/\./g, '\\.')}`));
  }
  t.deepEqual(snapshot(etc), before, 'nothing was overwritten');
  // What the message says to do: remove the journal, run again; the administrator's change stays.
  unlinkSync(path.join(etc, USER_DB_JOURNAL));
  nextRun(etc, home);
  const db = readUserDb(location);
  t.deepEqual(consistent(db), []);
  t.true(readFileSync(path.join(etc, 'passwd'), 'utf8').includes('changed by the administrator'));
});

test('a journal of an older version (no hashes) is never applied', (t) => {
  const { etc } = copyEtc(t);
  const before = snapshot(etc);
  const journal = JSON.stringify({ version: 1, files: { passwd: { content: 'root:x:0:0::/root:/bin/sh\n', mode: 0o644, uid: 0, gid: 0 } } });
  copyFileSync('/dev/null', path.join(etc, USER_DB_JOURNAL));
  spawnSync('sh', ['-c', `printf '%s' '${journal}' > ${path.join(etc, USER_DB_JOURNAL)}`]);
  t.throws(() => recoverUserDb({ etcDir: etc, systemLock: false }), { instanceOf: UserDbJournalError, message: /older slapos-node.*remove/ });
  t.deepEqual(snapshot(etc), before);
});
