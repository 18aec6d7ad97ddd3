// Killing a whole process tree (partition_timeout, slapgrid.md §4.4): every
// descendant and every member of the root's session, stopped first so that
// none can fork away while we collect them, then killed.
import { readdirSync, readFileSync } from 'node:fs';

interface ProcInfo {
  pid: number;
  ppid: number;
  session: number;
}

function readProcs(): ProcInfo[] {
  const procs: ProcInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // comm may hold spaces and parentheses: the fields start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.push({ pid: Number(entry), ppid: Number(fields[1]), session: Number(fields[3]) });
    } catch {
      // exited meanwhile
    }
  }
  return procs;
}

/** The pids of `root`'s tree: itself, its descendants, and its session's members. */
export function processTree(root: number): number[] {
  const procs = readProcs();
  const found = new Set<number>([root]);
  for (const p of procs) if (p.session === root) found.add(p.pid);
  let grew = true;
  while (grew) {
    grew = false;
    for (const p of procs) {
      if (!found.has(p.pid) && found.has(p.ppid)) {
        found.add(p.pid);
        grew = true;
      }
    }
  }
  return [...found];
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

/** SIGSTOP the tree (repeatedly, until no new member appears), then SIGKILL it. */
export function killProcessTree(root: number): number[] {
  const stopped = new Set<number>();
  for (let round = 0; round < 10; round++) {
    const tree = processTree(root).filter((pid) => !stopped.has(pid));
    if (tree.length === 0) break;
    for (const pid of tree) {
      signal(pid, 'SIGSTOP');
      stopped.add(pid);
    }
  }
  for (const pid of stopped) signal(pid, 'SIGKILL');
  return [...stopped];
}
