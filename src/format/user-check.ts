// format's check of the user database on every run (also a run whose plan
// is empty): every partition user and the software user present in passwd
// and shadow, its group in group and gshadow, with uid = gid as format makes
// them. Pure: the users step repairs what is missing; what it cannot repair
// without orphaning files (a pair whose ids differ) is reported.
import type { UserDb, WantedUser } from '../users/db.js';

export interface UserCheck {
  /** Missing entries: the users step of this run adds them. */
  missing: string[];
  /** Present, but not as format makes them: left to the administrator. */
  mismatched: string[];
}

/**
 * `formatted`: the node was formatted before (its state file exists); on a
 * first run users with no entry at all are simply new, not missing.
 */
export function checkUserDb(db: UserDb, wanted: readonly WantedUser[], formatted: boolean): UserCheck {
  const byName = (lines: string[][]) => new Map(lines.filter((l) => l.length > 3).map((l) => [l[0] as string, l]));
  const passwd = byName(db.passwd.lines);
  const group = byName(db.group.lines);
  const shadow = new Set(db.shadow.lines.filter((l) => l.length > 1).map((l) => l[0]));
  const gshadow = new Set(db.gshadow.lines.filter((l) => l.length > 1).map((l) => l[0]));
  const missing: string[] = [];
  const mismatched: string[] = [];
  for (const { name } of wanted) {
    const pw = passwd.get(name);
    const gr = group.get(name);
    const absent = [!pw && 'passwd', !shadow.has(name) && 'shadow', !gr && 'group', !gshadow.has(name) && 'gshadow'].filter((f): f is string => f !== false);
    if (absent.length > 0 && (formatted || absent.length < 4)) missing.push(`${name}: no entry in ${absent.join(', ')}`);
    if (pw && gr) {
      if (pw[2] !== gr[2]) mismatched.push(`${name}: uid ${pw[2]} but its group's gid is ${gr[2]}`);
      else if (pw[3] !== gr[2]) missing.push(`${name}: primary gid ${pw[3]} instead of its group's ${gr[2]}`);
    }
  }
  return { missing, mismatched };
}
