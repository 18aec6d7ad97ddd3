// supervisord program entries of a partition (slapgrid.md §4.5). Pure: names
// of etc/run and etc/service entries in, the group file text out.
import path from 'node:path';
import { containedProgramLines } from '../supervisor/config.js';

export interface ProgramSource {
  /** Partition id = group name. */
  group: string;
  partitionDir: string;
  uid: number;
  gid: number;
  /** From the passwd entry of uid. */
  user: { name: string; home: string };
  /** slapos-launch, and the cgroup.procs files of the partition's group (empty without cgroups). */
  launcher: string;
  cgroupProcs: readonly string[];
  /** Entry names of etc/run and etc/service (any order). */
  run: readonly string[];
  service: readonly string[];
}

export interface Program {
  id: string;
  command: string;
  processName: string;
}

/**
 * Names that can go into supervisord's configuration as they are. The files
 * are the instance's: a newline in a name would inject configuration lines
 * (e.g. `user = 0`), so anything else is refused.
 */
export const SAFE_PROGRAM_NAME = /^[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*$/;

export function unsafeProgramNames(src: Pick<ProgramSource, 'run' | 'service'>): string[] {
  return [...src.run, ...src.service].filter((name) => !SAFE_PROGRAM_NAME.test(name));
}

/** etc/run then etc/service, sorted; a service wins over a runner of the same name; unsafe names are left out. */
export function partitionPrograms(src: ProgramSource): Program[] {
  const programs = new Map<string, Program>();
  const safe = (names: readonly string[]) => names.filter((name) => SAFE_PROGRAM_NAME.test(name));
  for (const name of safe(src.run).sort()) {
    programs.set(name, { id: name, command: path.join(src.partitionDir, 'etc', 'run', name), processName: name });
  }
  for (const name of safe(src.service).sort()) {
    programs.set(name, { id: name, command: path.join(src.partitionDir, 'etc', 'service', name), processName: `${name}-on-watch` });
  }
  return [...programs.values()];
}

// supervisord reads %(...)s in values; a literal % must be doubled.
const sv = (value: string) => value.replaceAll('%', '%%');

/** The group file `<instance_root>/etc/supervisord.conf.d/<group>.conf`; undefined when there is no program. */
export function groupConfig(src: ProgramSource): string | undefined {
  const programs = partitionPrograms(src);
  if (programs.length === 0) return undefined;
  const g = src.group;
  const sections = [`[group:${g}]\nprograms = ${programs.map((p) => `${g}_${p.id}`).join(',')}\n`];
  for (const p of programs) {
    sections.push(
      [
        `[program:${g}_${p.id}]`,
        ...containedProgramLines({
          launcher: src.launcher, cgroupProcs: src.cgroupProcs, uid: src.uid, gid: src.gid, dir: src.partitionDir,
          log: path.join(src.partitionDir, `.${g}_${p.id}.log`), logMaxBytes: 100 * 1024, logBackups: 1, command: p.command,
        }),
        `process_name = ${sv(p.processName)}`,
        'autostart = false',
        'autorestart = false',
        'startsecs = 0',
        'startretries = 0',
        'exitcodes = 0',
        'stopsignal = TERM',
        'stopwaitsecs = 60',
        'stopasgroup = true',
        'killasgroup = true',
        'serverurl = AUTO',
        `environment = USER="${sv(src.user.name)}",LOGNAME="${sv(src.user.name)}",HOME="${sv(src.user.home)}"`,
        '',
      ].join('\n'),
    );
  }
  return sections.join('\n');
}
