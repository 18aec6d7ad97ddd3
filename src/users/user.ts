// The one user record of the project: a passwd entry as the node uses it
// (a partition's user, the owner of a software release, a user format
// resolves). Look-ups read /etc/passwd (Node has no getpwuid): it is the
// source of truth on a SlapOS node, whose users are local.
import { readFileSync } from 'node:fs';

export interface User {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export function parsePasswd(text: string): User[] {
  const entries: User[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 7 || line.startsWith('#')) continue;
    entries.push({ name: fields[0]!, uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5]! });
  }
  return entries;
}

export function userByUid(uid: number, file = '/etc/passwd'): User | undefined {
  return parsePasswd(readFileSync(file, 'utf8')).find((entry) => entry.uid === uid);
}
