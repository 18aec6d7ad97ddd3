// The users fast path: read the four database files, decide (db.ts), and
// write the changed ones ourselves under the same locks shadow's tools take.
//
// Why not useradd/groupadd/usermod/passwd per partition (the reference)? Each
// is one process that re-reads and rewrites the whole database: 300 partitions
// cost 900+ processes and seconds (newusers 4.3 s, a userdel loop 3.2 s). One
// locked read-modify-write of four small files does the same in milliseconds,
// and it is what those tools do internally: lckpwdf(), per-file "<file>.lock"
// links, write "<file>+", fsync, keep "<file>-" as the backup, rename.
//
// The four files are one commit: before the first rename, the intended
// contents of every changed file are written to a journal
// (<etc>/.slapos-userdb.journal: temp, fsync, rename, fsync of the
// directory). A run killed between two renames leaves the journal; the next
// locked run (and every read) replays it first, so the database is either as
// before (no journal yet) or completed, never a group without its user.
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync, fchownSync, fchmodSync } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';
import { USER_FILES, parseDbFile, parseLoginDefs, serializeDbFile, type UserDb, type UserFile, type UserPlan } from './db.js';
import { fsyncPath } from '../util/fsync.js';

export interface UserDbLocation {
  /** Directory holding passwd, group, shadow, gshadow (tests use a copy). */
  etcDir: string;
  /** Take glibc's lckpwdf() too (only meaningful for the real /etc). */
  systemLock: boolean;
}

export const SYSTEM_USER_DB: UserDbLocation = { etcDir: '/etc', systemLock: true };

/** Journal of an interrupted commit, in `etcDir`. */
export const USER_DB_JOURNAL = '.slapos-userdb.journal';

interface Journal {
  version: 1;
  files: Partial<Record<UserFile, { content: string; mode: number; uid: number; gid: number }>>;
}

function readJournal(etcDir: string): Journal | undefined {
  let text: string;
  try {
    text = readFileSync(path.join(etcDir, USER_DB_JOURNAL), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const journal = JSON.parse(text) as Journal; // written by rename: complete or absent
  if (journal.version !== 1 || typeof journal.files !== 'object') throw new Error(`${path.join(etcDir, USER_DB_JOURNAL)}: unknown journal; remove it after checking the user database`);
  return journal;
}

/** Test hook: SIGKILL ourselves just before renaming "<file>+" over this database file. */
const KILL_AT = process.env.SLAPOS_USERDB_TEST_KILL_AT;

export function readUserDb(location: UserDbLocation): UserDb {
  const db = {} as UserDb;
  // An interrupted commit counts as done: readers see what the next locked run completes.
  const journal = readJournal(location.etcDir);
  for (const f of USER_FILES) {
    let text = '';
    const journaled = journal?.files[f];
    if (journaled) {
      db[f] = parseDbFile(journaled.content);
      continue;
    }
    try {
      text = readFileSync(path.join(location.etcDir, f), 'utf8');
    } catch (error) {
      // gshadow (and shadow) may be missing on minimal systems: start them empty.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || f === 'passwd' || f === 'group') throw error;
    }
    db[f] = parseDbFile(text);
  }
  return db;
}

export function readLoginDefs(etcDir: string): ReturnType<typeof parseLoginDefs> {
  try {
    return parseLoginDefs(readFileSync(path.join(etcDir, 'login.defs'), 'utf8'));
  } catch {
    return parseLoginDefs('');
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** shadow's commonio lock: "<file>.<pid>" holding our pid, hard-linked to "<file>.lock". */
/** The user database is locked by a live process (another format, useradd, vipw): worth retrying shortly. */
export class UserDbLockedError extends Error {
  override name = 'UserDbLockedError';
}

function lockFile(file: string): () => void {
  const mine = `${file}.${process.pid}`;
  const lock = `${file}.lock`;
  const fd = openSync(mine, 'w', 0o600);
  writeSync(fd, String(process.pid));
  closeSync(fd);
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(mine, lock);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) {
          throw new Error(`cannot lock ${file}: ${lock} exists (another useradd/vipw running?); retry later`);
        }
        const holder = Number(readFileSync(lock, 'utf8').trim());
        if (Number.isInteger(holder) && holder > 0 && pidAlive(holder)) {
          throw new UserDbLockedError(`cannot lock ${file}: held by process ${holder}; retry when it is done`);
        }
        unlinkSync(lock); // stale, left by a killed process
      }
    }
  } finally {
    unlinkSync(mine);
  }
  return () => unlinkSync(lock);
}

/** Writes `file` atomically with the mode and owner of `like` (or 0644 root). */
function writeAtomic(file: string, content: string, like: { mode: number; uid: number; gid: number }): void {
  const temp = `${file}+`;
  const killHere = KILL_AT !== undefined && path.basename(file) === KILL_AT;
  const fd = openSync(temp, 'w', like.mode & 0o7777);
  try {
    fchmodSync(fd, like.mode & 0o7777);
    fchownSync(fd, like.uid, like.gid);
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (killHere) process.kill(process.pid, 'SIGKILL');
  renameSync(temp, file);
}

const DEFAULT_MODES: Record<UserFile, number> = { passwd: 0o644, group: 0o644, shadow: 0o640, gshadow: 0o640 };

/**
 * Runs `decide` on a fresh read of the database while holding the locks, and
 * writes the files it changed (group files first, so that a crash between
 * renames leaves a group without its user rather than a user without its
 * group; a re-run completes either way). Returns the plan.
 */
export function withLockedUserDb(location: UserDbLocation, decide: (db: UserDb) => UserPlan, dryRun = false): UserPlan {
  if (dryRun) return decide(readUserDb(location));
  const unlocks: (() => void)[] = [];
  if (location.systemLock) {
    native().lockUserDb();
    unlocks.push(() => native().unlockUserDb());
  }
  try {
    for (const f of USER_FILES) {
      const file = path.join(location.etcDir, f);
      try {
        statSync(file);
      } catch {
        if (f === 'shadow' || f === 'gshadow') continue;
      }
      unlocks.push(lockFile(file));
    }
    replayJournal(location.etcDir);
    const db = readUserDb(location);
    const plan = decide(db);
    const changed = (['group', 'gshadow', 'passwd', 'shadow'] as const).filter((f) => plan.changes[f]);
    if (changed.length > 0) {
      const journal: Journal = { version: 1, files: {} };
      for (const f of changed) journal.files[f] = { content: serializeDbFile(plan.changes[f]!), ...likeOf(location.etcDir, f) };
      writeAtomic(path.join(location.etcDir, USER_DB_JOURNAL), JSON.stringify(journal), { mode: 0o600, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
      fsyncPath(location.etcDir);
      commitJournal(location.etcDir, journal);
    }
    return plan;
  } finally {
    for (const unlock of unlocks.reverse()) {
      try {
        unlock();
      } catch {
        // best effort: a lock we cannot remove is reported by the next run
      }
    }
  }
}

function likeOf(etcDir: string, f: UserFile): { mode: number; uid: number; gid: number } {
  try {
    const st = statSync(path.join(etcDir, f));
    return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    return { mode: DEFAULT_MODES[f], uid: 0, gid: 0 };
  }
}

/** Renames every journaled file into place (group files first), then drops the journal. Idempotent. */
function commitJournal(etcDir: string, journal: Journal): void {
  for (const f of ['group', 'gshadow', 'passwd', 'shadow'] as const) {
    const entry = journal.files[f];
    if (entry) writeDbFile(etcDir, f, entry.content, entry);
  }
  fsyncPath(etcDir);
  unlinkSync(path.join(etcDir, USER_DB_JOURNAL));
  fsyncPath(etcDir);
}

/** Completes a commit a killed run left (under the locks). */
function replayJournal(etcDir: string): void {
  const journal = readJournal(etcDir);
  if (journal) commitJournal(etcDir, journal);
}

function writeDbFile(etcDir: string, f: UserFile, content: string, like: { mode: number; uid: number; gid: number }): void {
  const file = path.join(etcDir, f);
  let current: string | undefined;
  try {
    current = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (current === content) return; // renamed already by the interrupted run
  // "<file>-" is the previous version, as shadow's tools keep it.
  if (current !== undefined) writeAtomic(`${file}-`, current, like);
  writeAtomic(file, content, like);
}
