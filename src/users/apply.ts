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
// contents of every changed file, with the hash of the file each was made
// from, are written to a journal (<etc>/.slapos-userdb.journal: temp, fsync,
// rename, fsync of the directory). A run killed between two renames leaves
// the journal; before anything reads the database (recoverUserDb, under the
// same locks) it is completed when every journaled file is still the one it
// was made from or already the new one, rolled back (dropped) when none was
// renamed yet, and otherwise refused with a message: a file changed by
// another tool (useradd, vipw, a package) is never overwritten.
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync, fchownSync, fchmodSync } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';
import { USER_FILES, parseDbFile, parseLoginDefs, serializeDbFile, type UserDb, type UserFile, type UserPlan } from './db.js';
import { fsyncPath } from '../util/fsync.js';
import { killPoint } from '../util/kill-point.js';

export interface UserDbLocation {
  /** Directory holding passwd, group, shadow, gshadow (tests use a copy). */
  etcDir: string;
  /** Take glibc's lckpwdf() too (only meaningful for the real /etc). */
  systemLock: boolean;
}

export const SYSTEM_USER_DB: UserDbLocation = { etcDir: '/etc', systemLock: true };

/** Journal of an interrupted commit, in `etcDir`. */
export const USER_DB_JOURNAL = '.slapos-userdb.journal';

/** Order of the renames: group files first (a crash leaves a group without its user, never a user without its group). */
const COMMIT_ORDER = ['group', 'gshadow', 'passwd', 'shadow'] as const;

/**
 * The step boundaries of the commit, for the kill hook (src/util/kill-point.ts)
 * and docs/design.md: the journal's temp file written, the journal in place,
 * then per file its backup "<file>-" written and the file renamed, then the
 * journal removed.
 */
export const USER_DB_KILL_POINTS: readonly string[] = [
  'userdb:journal-temp',
  'userdb:journal',
  ...COMMIT_ORDER.flatMap((f) => [`userdb:backup:${f}`, `userdb:renamed:${f}`]),
  'userdb:journal-removed',
];

interface JournalEntry {
  content: string;
  mode: number;
  uid: number;
  gid: number;
  /** sha256 of the file the new content was made from; null when it did not exist. */
  base: string | null;
}

interface Journal {
  version: 2;
  files: Partial<Record<UserFile, JournalEntry>>;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function readJournal(etcDir: string): Journal | undefined {
  const file = path.join(etcDir, USER_DB_JOURNAL);
  const text = readText(file);
  if (text === undefined) return undefined;
  let journal: Journal;
  try {
    journal = JSON.parse(text) as Journal; // written by rename: complete or absent
  } catch {
    throw new UserDbJournalError(`${file} is not a journal this version can read; check the user database (pwck -r, grpck -r), then remove ${file} and run format again`);
  }
  if (journal.version !== 2 || typeof journal.files !== 'object') {
    // Version 1 recorded no hashes: it cannot tell whether a file changed since, so it is never applied.
    throw new UserDbJournalError(
      `${file} was left by an older slapos-node, which did not record the files it was made from, so it is not applied; ` +
        `check the user database (pwck -r, grpck -r), then remove ${file} and run format again: it adds the missing partition users`,
    );
  }
  return journal;
}

/** A journal left by a killed commit cannot be completed: a journaled file was changed by another tool since. */
export class UserDbJournalError extends Error {
  override name = 'UserDbJournalError';
}

/** What a journal left by a killed commit means for the files as they are now. */
export type JournalState =
  | { kind: 'none' }
  /** Every journaled file is its base or its new content: complete the renames. */
  | { kind: 'complete'; pending: UserFile[]; done: UserFile[]; journal: Journal }
  /** No journaled file was renamed yet (some changed since): drop the journal, the next plan starts from the files as they are. */
  | { kind: 'roll-back'; changed: UserFile[] }
  /** Some files were renamed, others changed since by another tool: refuse. */
  | { kind: 'conflict'; done: UserFile[]; changed: UserFile[] };

export function journalState(etcDir: string): JournalState {
  const journal = readJournal(etcDir);
  if (!journal) return { kind: 'none' };
  const pending: UserFile[] = [];
  const done: UserFile[] = [];
  const changed: UserFile[] = [];
  for (const f of COMMIT_ORDER) {
    const entry = journal.files[f];
    if (!entry) continue;
    const current = readText(path.join(etcDir, f));
    if (current === entry.content) done.push(f);
    else if ((current === undefined ? null : sha256(current)) === entry.base) pending.push(f);
    else changed.push(f);
  }
  if (changed.length === 0) return { kind: 'complete', pending, done, journal };
  if (done.length === 0) return { kind: 'roll-back', changed };
  return { kind: 'conflict', done, changed };
}

/** The refusal for a conflicting journal: which files, and what to do. */
export function journalConflictMessage(etcDir: string, state: { done: UserFile[]; changed: UserFile[] }): string {
  const journal = path.join(etcDir, USER_DB_JOURNAL);
  const names = (fs: UserFile[]) => fs.map((f) => path.join(etcDir, f)).join(', ');
  return (
    `a user database commit of format was interrupted (${names(state.done)} written, the rest not) and ` +
    `${names(state.changed)} changed since (useradd, vipw, a package?): nothing was overwritten. ` +
    `Check the user database (pwck -r, grpck -r; the new contents are in ${journal}), ` +
    `then remove ${journal} and run format again: it adds the missing partition users and groups`
  );
}

/**
 * Reads the four files as they are. Callers first run recoverUserDb (or, in a
 * dry run, readUserDbAsRecovered): a journal left by a killed run is never
 * counted as applied here.
 */
export function readUserDb(location: UserDbLocation): UserDb {
  const db = {} as UserDb;
  for (const f of USER_FILES) {
    const text = readText(path.join(location.etcDir, f));
    // gshadow (and shadow) may be missing on minimal systems: start them empty.
    if (text === undefined && (f === 'passwd' || f === 'group')) throw new Error(`${path.join(location.etcDir, f)} does not exist`);
    db[f] = parseDbFile(text ?? '');
  }
  return db;
}

/** For a dry run: the database as recoverUserDb would leave it (a conflict throws). */
export function readUserDbAsRecovered(location: UserDbLocation): UserDb {
  const state = journalState(location.etcDir);
  if (state.kind === 'conflict') throw new UserDbJournalError(journalConflictMessage(location.etcDir, state));
  const db = readUserDb(location);
  if (state.kind === 'complete') for (const f of state.pending) db[f] = parseDbFile(state.journal.files[f]!.content);
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

/** The user database is locked by a live process (another format, useradd, vipw): worth retrying shortly. */
export class UserDbLockedError extends Error {
  override name = 'UserDbLockedError';
}

/** The pid written in a lock file, when it names a process that no longer runs. */
function deadOwner(file: string): boolean {
  const text = readText(file);
  if (text === undefined) return false;
  const holder = Number(text.trim());
  return !(Number.isInteger(holder) && holder > 0 && pidAlive(holder));
}

/** shadow's commonio lock: "<file>.<pid>" holding our pid, hard-linked to "<file>.lock". */
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
        if (!deadOwner(lock)) {
          throw new UserDbLockedError(`cannot lock ${file}: held by process ${readText(lock)?.trim() ?? '?'}; retry when it is done`);
        }
        unlinkSync(lock); // stale, left by a killed process: shadow's tools remove it the same way
      }
    }
  } finally {
    unlinkSync(mine);
  }
  return () => unlinkSync(lock);
}

/** Writes `file` atomically with the mode and owner of `like` (or 0644 root); `point` is the kill point before the rename. */
function writeAtomic(file: string, content: string, like: { mode: number; uid: number; gid: number }, point?: string): void {
  const temp = `${file}+`;
  const fd = openSync(temp, 'w', like.mode & 0o7777);
  try {
    fchmodSync(fd, like.mode & 0o7777);
    fchownSync(fd, like.uid, like.gid);
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (point) killPoint(point);
  renameSync(temp, file);
}

const DEFAULT_MODES: Record<UserFile, number> = { passwd: 0o644, group: 0o644, shadow: 0o640, gshadow: 0o640 };

/** Takes lckpwdf() and the four per-file locks; returns the release. */
function lockUserDb(location: UserDbLocation): () => void {
  const unlocks: (() => void)[] = [];
  const release = () => {
    for (const unlock of unlocks.reverse()) {
      try {
        unlock();
      } catch {
        // best effort: a lock we cannot remove is cleared by the next run (its owner is dead)
      }
    }
  };
  try {
    if (location.systemLock) {
      native().lockUserDb();
      unlocks.push(() => native().unlockUserDb());
    }
    for (const f of USER_FILES) {
      const file = path.join(location.etcDir, f);
      if ((f === 'shadow' || f === 'gshadow') && readText(file) === undefined) continue;
      unlocks.push(lockFile(file));
    }
  } catch (error) {
    release();
    throw error;
  }
  return release;
}

/**
 * Leftovers of killed writers in `etcDir`: "<file>.lock" and "<file>.<pid>"
 * of dead processes, "<file>+" and "<file>-+" temp files, our journal's temp.
 * Without the locks, temp files are only candidates (a live useradd writes
 * "<file>+" under them): recovery takes the locks to look again.
 */
function leftovers(etcDir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(etcDir);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of names) {
    const f = USER_FILES.find((u) => name.startsWith(`${u}.`) || name.startsWith(`${u}+`) || name.startsWith(`${u}-+`));
    if (name === `${USER_DB_JOURNAL}+`) {
      out.push(name);
      continue;
    }
    if (!f) continue;
    const rest = name.slice(f.length);
    if (rest === '.lock' || /^\.[0-9]+$/.test(rest)) {
      if (deadOwner(path.join(etcDir, name))) out.push(name);
    } else if (rest === '+' || rest === '-+') {
      out.push(name);
    }
  }
  return out;
}

/**
 * Brings the user database back to a committed state before anything reads
 * it, whatever the plan: a journal left by a killed commit is completed (or
 * rolled back when none of its renames happened), leftovers of dead writers
 * are removed. Takes the locks only when there is something to do (a
 * formatted node's run stays lock-free). Returns what it repaired, for the
 * log; throws UserDbJournalError when a journaled file changed since.
 * With `dryRun`, changes nothing and returns what it would repair.
 */
export function recoverUserDb(location: UserDbLocation, dryRun = false): string[] {
  const journalThere = readText(path.join(location.etcDir, USER_DB_JOURNAL)) !== undefined;
  if (!journalThere && leftovers(location.etcDir).length === 0) return [];
  if (dryRun) {
    const repairs = leftovers(location.etcDir).map((name) => `remove ${path.join(location.etcDir, name)} (left by a killed process)`);
    return [...describeJournal(location.etcDir, journalState(location.etcDir)), ...repairs];
  }
  const release = lockUserDb(location);
  try {
    return recoverLocked(location.etcDir);
  } finally {
    release();
  }
}

function describeJournal(etcDir: string, state: JournalState): string[] {
  const names = (fs: UserFile[]) => fs.join(', ');
  switch (state.kind) {
    case 'none':
      return [];
    case 'conflict':
      throw new UserDbJournalError(journalConflictMessage(etcDir, state));
    case 'complete':
      return [`complete the user database commit a killed run left (${path.join(etcDir, USER_DB_JOURNAL)}): ${state.pending.length > 0 ? `write ${names(state.pending)}` : 'every file already written'}`];
    case 'roll-back':
      return [`roll back the user database commit a killed run left before writing any file (${names(state.changed)} changed since by another tool): plan again from the files as they are`];
  }
}

/** recoverUserDb's work, with the locks held. */
function recoverLocked(etcDir: string): string[] {
  const state = journalState(etcDir);
  const repairs = describeJournal(etcDir, state); // throws on a conflict, before any change
  if (state.kind === 'complete') commitJournal(etcDir, state.journal);
  else if (state.kind === 'roll-back') dropJournal(etcDir);
  for (const name of leftovers(etcDir)) {
    try {
      unlinkSync(path.join(etcDir, name));
      repairs.push(`removed ${path.join(etcDir, name)} (left by a killed process)`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return repairs;
}

/**
 * Runs `decide` on a fresh read of the database while holding the locks, and
 * writes the files it changed as one journaled commit (see the top of this
 * file). A journal left by a killed run is dealt with first. Returns the plan
 * and what recovery repaired.
 */
export function withLockedUserDb(location: UserDbLocation, decide: (db: UserDb) => UserPlan, dryRun = false): UserPlan & { repaired: string[] } {
  if (dryRun) {
    const repaired = recoverUserDb(location, true);
    return { ...decide(readUserDbAsRecovered(location)), repaired };
  }
  const release = lockUserDb(location);
  try {
    const repaired = recoverLocked(location.etcDir);
    const bases = new Map<UserFile, string | undefined>();
    for (const f of USER_FILES) bases.set(f, readText(path.join(location.etcDir, f)));
    const db = readUserDb(location);
    const plan = decide(db);
    const changed = COMMIT_ORDER.filter((f) => plan.changes[f]);
    if (changed.length > 0) {
      const journal: Journal = { version: 2, files: {} };
      for (const f of changed) {
        const base = bases.get(f);
        journal.files[f] = { content: serializeDbFile(plan.changes[f]!), ...likeOf(location.etcDir, f), base: base === undefined ? null : sha256(base) };
      }
      const self = { mode: 0o600, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
      writeAtomic(path.join(location.etcDir, USER_DB_JOURNAL), JSON.stringify(journal), self, 'userdb:journal-temp');
      fsyncPath(location.etcDir);
      killPoint('userdb:journal');
      commitJournal(location.etcDir, journal);
    }
    return { ...plan, repaired };
  } finally {
    release();
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
  for (const f of COMMIT_ORDER) {
    const entry = journal.files[f];
    if (entry) writeDbFile(etcDir, f, entry.content, entry);
  }
  fsyncPath(etcDir);
  dropJournal(etcDir);
}

function dropJournal(etcDir: string): void {
  unlinkSync(path.join(etcDir, USER_DB_JOURNAL));
  fsyncPath(etcDir);
  killPoint('userdb:journal-removed');
}

function writeDbFile(etcDir: string, f: UserFile, content: string, like: { mode: number; uid: number; gid: number }): void {
  const file = path.join(etcDir, f);
  const current = readText(file);
  if (current === content) return; // renamed already by the interrupted run
  // "<file>-" is the previous version, as shadow's tools keep it.
  if (current !== undefined) writeAtomic(`${file}-`, current, like);
  killPoint(`userdb:backup:${f}`);
  writeAtomic(file, content, like);
  killPoint(`userdb:renamed:${f}`);
}
