// User database look-ups (Node has no getpwuid): /etc/passwd is the source of
// truth on a SlapOS node, whose users are local.
import { readFileSync } from 'node:fs';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields.length < 7 || line.startsWith('#')) continue;
    entries.push({ name: fields[0]!, uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5]! });
  }
  return entries;
}

export function userByUid(uid: number, file = '/etc/passwd'): PasswdEntry | undefined {
  return parsePasswd(readFileSync(file, 'utf8')).find((entry) => entry.uid === uid);
}
