// How a node loop starts, as the reference's (slapgrid.md §1, §9): an optional
// random delay (maximal_delay, skipped with --now), then one run at a time
// through the loop's pid file (exit 10 when another run holds it).
import { setTimeout as sleep } from 'node:timers/promises';
import { Exit } from './exit-status.js';
import type { Logger } from './log.js';
import { acquirePidFile, AlreadyRunningError } from './pidfile.js';

/** Sleeps 1..maximalDelay seconds unless `now` or the delay is 0. */
export async function randomStartDelay(maximalDelay: number, now: boolean | undefined, log: Logger): Promise<void> {
  if (now || maximalDelay <= 0) return;
  const seconds = 1 + Math.floor(Math.random() * maximalDelay);
  log.info({ delay_s: seconds }, 'sleeping before starting (maximal_delay; --now to skip)');
  await sleep(seconds * 1000);
}

/** Runs `fn` holding the pid file `file`; Exit.ALREADY_RUNNING when another run holds it. */
export async function withPidFile(file: string, log: Logger, fn: () => Promise<number>): Promise<number> {
  let lock;
  try {
    lock = acquirePidFile(file);
  } catch (error) {
    if (!(error instanceof AlreadyRunningError)) throw error;
    log.info({ err: error, code: 'ALREADY_RUNNING' }, 'New slapos process started, but another one runs');
    return Exit.ALREADY_RUNNING;
  }
  try {
    if (lock.replacedStale) log.info({ pidfile: file }, 'Existing pid file was stale, overwritten');
    return await fn();
  } finally {
    lock.release();
  }
}
