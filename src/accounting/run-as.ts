// Instance scripts (etc/report/*, sbin/destroy) run as the partition user:
// clean environment, HOME = the user's home, stdin closed, output kept for
// the error, a timeout that kills the whole process group.
import { execa } from 'execa';

import type { User } from '../users/user.js';

/** Kept as a name for the accounting callers: the same record as every other user (users/user.ts). */
export type PartitionUser = User;

export interface ScriptRun {
  ok: boolean;
  exitCode: number | undefined;
  timedOut: boolean;
  output: string;
}

const OUTPUT_TAIL = 16 * 1024;

export async function runAsPartitionUser(
  command: string, args: readonly string[], options: { cwd: string; user: User; timeoutMs: number },
): Promise<ScriptRun> {
  if (options.user.uid === 0 || options.user.gid === 0) throw new Error(`refusing to run ${command} as root for a partition`);
  const asRoot = process.getuid?.() === 0;
  const result = await execa(command, [...args], {
    cwd: options.cwd,
    env: {
      HOME: options.user.home, USER: options.user.name, LOGNAME: options.user.name,
      PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', PYTHONNOUSERSITE: 'true',
    },
    extendEnv: false,
    ...(asRoot ? { uid: options.user.uid, gid: options.user.gid } : {}),
    stdin: 'ignore',
    all: true,
    reject: false,
    timeout: options.timeoutMs,
    forceKillAfterDelay: 5_000,
    cleanup: true,
  });
  const output = (result.all ?? '').slice(-OUTPUT_TAIL);
  return { ok: !result.failed, exitCode: result.exitCode, timedOut: Boolean(result.timedOut), output };
}
