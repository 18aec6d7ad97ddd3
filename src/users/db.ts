// The user database files (passwd, group, shadow, gshadow) as data, and the
// pure decision of what to change in them for format's users. Lines we do not
// manage are kept byte for byte, in place.
import type { User } from './user.js';

export const USER_FILES = ['passwd', 'shadow', 'group', 'gshadow'] as const;
export type UserFile = (typeof USER_FILES)[number];

/** Field counts, as shadow's tools expect them. */
const FIELDS: Record<UserFile, number> = { passwd: 7, shadow: 9, group: 4, gshadow: 4 };

export interface DbFile {
  /** Each line split on ":"; comment/odd lines are kept as one raw field. */
  lines: string[][];
}

export type UserDb = Record<UserFile, DbFile>;

export function parseDbFile(text: string): DbFile {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return { lines: lines.map((line) => (line.startsWith('#') || line.startsWith('+') || line.startsWith('-') ? [line] : line.split(':'))) };
}

export function serializeDbFile(file: DbFile): string {
  return file.lines.map((fields) => fields.join(':')).join('\n') + (file.lines.length > 0 ? '\n' : '');
}

/** The first line of each name in a file, kept in step with lines pushed through it. */
class NameIndex {
  private readonly byName = new Map<string, string[]>();

  constructor(private readonly file: DbFile) {
    for (const fields of file.lines) if (fields.length > 1 && !this.byName.has(fields[0] as string)) this.byName.set(fields[0] as string, fields);
  }

  get(name: string): string[] | undefined {
    return this.byName.get(name);
  }

  push(fields: string[]): void {
    this.file.lines.push(fields);
    if (!this.byName.has(fields[0] as string)) this.byName.set(fields[0] as string, fields);
  }
}

export interface IdRange {
  min: number;
  max: number;
}

/** The id ranges from /etc/login.defs text (Debian defaults when a key is absent). */
export function parseLoginDefs(text: string): { system: IdRange; normal: IdRange } {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_]+)\s+(\d+)\s*$/.exec(line);
    if (m?.[1] && m[2]) values.set(m[1], Number(m[2]));
  }
  const get = (key: string, fallback: number) => values.get(key) ?? fallback;
  return {
    system: { min: Math.max(get('SYS_UID_MIN', 100), get('SYS_GID_MIN', 100)), max: Math.min(get('SYS_UID_MAX', 999), get('SYS_GID_MAX', 999)) },
    normal: { min: Math.max(get('UID_MIN', 1000), get('GID_MIN', 1000)), max: Math.min(get('UID_MAX', 60000), get('GID_MAX', 60000)) },
  };
}

/** A user format wants: its own group of the same name, home, shell, extra groups. */
export interface WantedUser {
  name: string;
  home: string;
  shell: string;
  /** Supplementary groups (they must exist or be wanted users' groups). */
  groups: string[];
}

/** A user of the plan: the one user record (user.ts), and whether the plan creates it. */
export interface ResolvedUser extends User {
  /** True when it was not in passwd before this plan. */
  created: boolean;
}

export interface UserPlan {
  /** Per file: the new content, only for files that change. */
  changes: Partial<Record<UserFile, DbFile>>;
  /** Human-readable list of what changes, for logs and --dry-run. */
  summary: string[];
  users: Map<string, ResolvedUser>;
}

function clone(db: UserDb): UserDb {
  const out = {} as UserDb;
  for (const f of USER_FILES) out[f] = { lines: db[f].lines.map((l) => [...l]) };
  return out;
}

/**
 * Allocates ids for new users: one number free both as uid and gid, so the
 * user and its group share it. We take the system range first (as the
 * reference's `useradd -r`), highest first like useradd does, then the normal
 * range from the bottom. Ids in use in passwd or group are never reused.
 */
function idAllocator(db: UserDb, ranges: { system: IdRange; normal: IdRange }): () => number {
  const used = new Set<number>();
  for (const fields of db.passwd.lines) if (fields.length > 3) used.add(Number(fields[2]));
  for (const fields of db.group.lines) if (fields.length > 3) used.add(Number(fields[2]));
  let systemNext = ranges.system.max;
  let normalNext = ranges.normal.min;
  return () => {
    while (systemNext >= ranges.system.min && used.has(systemNext)) systemNext--;
    if (systemNext >= ranges.system.min) {
      used.add(systemNext);
      return systemNext--;
    }
    while (normalNext <= ranges.normal.max && used.has(normalNext)) normalNext++;
    if (normalNext <= ranges.normal.max) {
      used.add(normalNext);
      return normalNext++;
    }
    throw new Error(
      `no free user/group id left in ${ranges.system.min}..${ranges.system.max} or ${ranges.normal.min}..${ranges.normal.max} ` +
        '(/etc/login.defs SYS_UID_*/UID_*); lower partition_amount or widen the ranges',
    );
  };
}

/**
 * What to change so that every wanted user exists as wanted, and every name
 * in `remove` is gone (user, group, and membership elsewhere). Existing users
 * and groups keep their ids; a locked password stays locked (prefix "!").
 * `today` is the shadow "last change" day for new entries.
 */
export function planUsers(
  db: UserDb,
  wanted: readonly WantedUser[],
  remove: readonly string[],
  ranges: { system: IdRange; normal: IdRange },
  today: number,
): UserPlan {
  const next = clone(db);
  const summary: string[] = [];
  const users = new Map<string, ResolvedUser>();
  const allocate = idAllocator(db, ranges);
  const usedUids = new Set(db.passwd.lines.filter((l) => l.length > 3).map((l) => Number(l[2])));
  const usedGids = new Set(db.group.lines.filter((l) => l.length > 3).map((l) => Number(l[2])));
  const removing = new Set(remove);

  // One pass per file drops the removed names.
  const present = new Set<string>();
  for (const f of USER_FILES) {
    next[f].lines = next[f].lines.filter((fields) => {
      const gone = fields.length > 1 && removing.has(fields[0] as string);
      if (gone) present.add(fields[0] as string);
      return !gone;
    });
  }
  for (const name of remove) if (present.has(name)) summary.push(`remove user and group ${name}`);
  // Drop removed names from every group's member lists.
  for (const f of ['group', 'gshadow'] as const) {
    const memberField = 3;
    for (const fields of next[f].lines) {
      if (fields.length < 4) continue;
      const members = (fields[memberField] ?? '').split(',').filter((m) => m !== '');
      const kept = members.filter((m) => !removing.has(m));
      if (kept.length !== members.length) fields[memberField] = kept.join(',');
      if (f === 'gshadow') {
        const admins = (fields[2] ?? '').split(',').filter((m) => m !== '');
        const keptAdmins = admins.filter((m) => !removing.has(m));
        if (keptAdmins.length !== admins.length) fields[2] = keptAdmins.join(',');
      }
    }
  }

  // Lookups by name (hundreds of partition users: no linear search per user).
  const index = {} as Record<UserFile, NameIndex>;
  for (const f of USER_FILES) index[f] = new NameIndex(next[f]);
  const before = new NameIndex(db.group);

  for (const user of wanted) {
    const pw = index.passwd.get(user.name);
    let group = index.group.get(user.name);
    // A half-made pair (a killed commit, a hand edit) is completed with uid = gid
    // when that number is free: a user takes its group's gid, a group its user's uid.
    const groupGid = group ? Number(group[2]) : -1;
    const uid = pw ? Number(pw[2]) : group && !usedUids.has(groupGid) ? groupGid : allocate();
    usedUids.add(uid);
    let gid = groupGid;
    if (!group) {
      // A new user's number was allocated free as a gid too; an old user's may not be.
      gid = pw && usedGids.has(uid) ? allocate() : uid;
      usedGids.add(gid);
      group = [user.name, 'x', String(gid), ''];
      index.group.push(group);
      summary.push(`add group ${user.name} (gid ${gid})`);
    }
    if (!index.gshadow.get(user.name)) {
      index.gshadow.push([user.name, '!', '', '']);
      if (before.get(user.name)) summary.push(`add gshadow entry for ${user.name}`);
    }
    const wantPw = [user.name, 'x', String(uid), String(gid), '', user.home, user.shell];
    if (!pw) {
      index.passwd.push(wantPw);
      summary.push(`add user ${user.name} (uid ${uid}, gid ${gid}, home ${user.home})`);
    } else if (pw[3] !== String(gid) || pw[5] !== user.home || pw[6] !== user.shell || pw[1] !== 'x') {
      summary.push(`update user ${user.name} (group, home ${user.home}, shell ${user.shell})`);
      pw[1] = 'x';
      pw[3] = String(gid);
      pw[5] = user.home;
      pw[6] = user.shell;
    }
    const sp = index.shadow.get(user.name);
    if (!sp) {
      index.shadow.push([user.name, '!', String(today), '', '', '', '', '', '']);
      if (pw) summary.push(`add shadow entry for ${user.name} (password locked)`);
    } else if (!(sp[1] ?? '').startsWith('!')) {
      sp[1] = `!${sp[1] ?? ''}`;
      summary.push(`lock the password of ${user.name}`);
    }
    users.set(user.name, { name: user.name, uid, gid, home: user.home, created: !pw });
  }

  // Supplementary groups: append only (as usermod -aG), in group and gshadow.
  // Member lists are split once per group and joined back once.
  const memberLists = new Map<string[], { list: string[]; set: Set<string>; changed: boolean }>();
  for (const user of wanted) {
    for (const groupName of user.groups) {
      for (const f of ['group', 'gshadow'] as const) {
        const fields = index[f].get(groupName);
        if (!fields) {
          if (f === 'group') throw new Error(`group ${groupName} (supplementary group of ${user.name}) does not exist`);
          continue;
        }
        let members = memberLists.get(fields);
        if (!members) {
          while (fields.length < FIELDS[f]) fields.push('');
          const list = (fields[3] ?? '').split(',').filter((m) => m !== '');
          members = { list, set: new Set(list), changed: false };
          memberLists.set(fields, members);
        }
        if (!members.set.has(user.name)) {
          members.list.push(user.name);
          members.set.add(user.name);
          members.changed = true;
          if (f === 'group') summary.push(`add ${user.name} to group ${groupName}`);
        }
      }
    }
  }
  for (const [fields, members] of memberLists) if (members.changed) fields[3] = members.list.join(',');

  const changes: Partial<Record<UserFile, DbFile>> = {};
  for (const f of USER_FILES) {
    if (serializeDbFile(next[f]) !== serializeDbFile(db[f])) changes[f] = next[f];
  }
  return { changes, summary, users };
}
