// Destruction of a partition the master says is destroyed (slapgrid.md §5.2,
// §5.3 prerm): the decisions, as pure functions of what was observed.
import { containedProgramLines } from '../supervisor/config.js';

export const RETENTION_DELAY_FILE = '.slapos-retention-lock-delay';
export const RETENTION_DATE_FILE = '.slapos-retention-lock-date';
export const WAIT_LIST_FILE = '.slapos-report-wait-service-list';
/** Kept when the directory is emptied: format's description of the partition (the reference removes it too). */
export const KEPT_ENTRIES: ReadonlySet<string> = new Set(['.slapos-resource']);

export type Retention =
  | { kind: 'allowed' }
  /** Locked until `until` (unix s); `writeDate` set on the first attempt. */
  | { kind: 'locked'; until: number | null; writeDate: boolean };

/**
 * The retention lock: the delay file holds days (float; missing = −1 =
 * allowed). With a delay > 0, the first attempt writes the date
 * int(now) + delay × 86400 and is refused; later attempts are refused until it.
 */
export function retention(delayText: string | null, dateText: string | null, now: number): Retention {
  const delay = delayText === null ? -1 : Number(delayText.trim());
  if (!Number.isFinite(delay) || delay <= 0) return { kind: 'allowed' };
  if (dateText === null) return { kind: 'locked', until: Math.floor(now) + delay * 86400, writeDate: true };
  const until = Number(dateText.trim());
  if (!Number.isFinite(until)) return { kind: 'locked', until: null, writeDate: false };
  return now < until ? { kind: 'locked', until, writeDate: false } : { kind: 'allowed' };
}

export type ProcessState = 'STOPPED' | 'STARTING' | 'RUNNING' | 'BACKOFF' | 'STOPPING' | 'EXITED' | 'FATAL' | 'UNKNOWN' | 'ABSENT';

export interface DestructionObservation {
  retention: Retention;
  /** Regular files of etc/prerm, sorted. */
  prermScripts: string[];
  /** Content of the wait list (names "group:process"), null when absent. */
  waitList: string[] | null;
  /** State of each waited process ("ABSENT" when supervisord does not know it). */
  states: ReadonlyMap<string, ProcessState>;
  hasDestroyScript: boolean;
}

export type DestructionDecision =
  | { kind: 'locked'; until: number | null; writeDate: boolean }
  | { kind: 'start-prerm'; scripts: string[] }
  | { kind: 'wait-prerm'; running: string[] }
  | { kind: 'destroy'; runDestroyScript: boolean };

const BUSY: ReadonlySet<ProcessState> = new Set(['RUNNING', 'STARTING', 'BACKOFF', 'STOPPING']);

/** What to do now with a destroyed partition whose processes are stopped. */
export function decideDestruction(o: DestructionObservation): DestructionDecision {
  if (o.retention.kind === 'locked') return { kind: 'locked', until: o.retention.until, writeDate: o.retention.writeDate };
  if (o.prermScripts.length > 0 && o.waitList === null) return { kind: 'start-prerm', scripts: o.prermScripts };
  const running = (o.waitList ?? []).filter((name) => BUSY.has(o.states.get(name) ?? 'ABSENT'));
  if (running.length > 0) return { kind: 'wait-prerm', running };
  return { kind: 'destroy', runDestroyScript: o.hasDestroyScript };
}

/** The supervisord group running a partition's prerm scripts. */
export const prermGroup = (partitionId: string) => `${partitionId}-prerm`;

/** Whether a supervisord include file belongs to the partition (<id>.conf, <id>-*.conf). */
export function isPartitionConf(file: string, partitionId: string): boolean {
  return file === `${partitionId}.conf` || (file.startsWith(`${partitionId}-`) && file.endsWith('.conf'));
}

/** One [group]/[program] file for the prerm scripts, as the reference's template (slapgrid.md §4.5). */
export function prermConf(
  partition: { id: string; path: string; uid: number; gid: number; user: string; home: string; launcher: string; cgroupProcs: readonly string[] },
  scripts: readonly string[],
): string {
  const group = prermGroup(partition.id);
  const programs = scripts.map((s) => `${group}_${s}`);
  const lines = [`[group:${group}]`, `programs=${programs.join(',')}`, ''];
  for (const script of scripts) {
    lines.push(
      `[program:${group}_${script}]`,
      // Contained as the partition's programs (src/supervisor/config.ts): no partition path handed to supervisord.
      ...containedProgramLines({
        launcher: partition.launcher, cgroupProcs: partition.cgroupProcs, uid: partition.uid, gid: partition.gid, dir: partition.path,
        log: `${partition.path}/.${group}_${script}.log`, logMaxBytes: 100 * 1024, logBackups: 1, command: `${partition.path}/etc/prerm/${script}`,
      }),
      `process_name=${script}`,
      'autostart=false', 'autorestart=false', 'startsecs=0', 'startretries=0', 'exitcodes=0',
      'stopsignal=TERM', 'stopwaitsecs=60', 'stopasgroup=true', 'killasgroup=true',
      'serverurl=AUTO',
      `environment=USER="${partition.user}",LOGNAME="${partition.user}",HOME="${partition.home}"`, '',
    );
  }
  return lines.join('\n');
}
