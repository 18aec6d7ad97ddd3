// One run per loop: the reference's pid file (slapgrid.md §9). A pid file whose
// process is alive and has "slapos" in its command line means another run is
// going on (exit 10); otherwise it is stale and replaced. Creation is
// exclusive (O_EXCL), so two runs starting together cannot both win, which
// the reference's plain write allows.
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

export class AlreadyRunningError extends Error {
  constructor(
    readonly pidFile: string,
    readonly pid: number,
  ) {
    super(`another slapos process is already running with pid ${pid} (pid file ${pidFile}), exiting`);
    this.name = 'AlreadyRunningError';
  }
}

export interface PidFileLock {
  /** Whether a stale pid file was replaced. */
  replacedStale: boolean;
  release(): void;
}

/** Whether `pid` is a live process whose command line mentions slapos. */
export function isSlaposProcess(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('slapos');
  } catch {
    return false;
  }
}

function tryCreate(file: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    writeSync(fd, String(process.pid));
  } finally {
    closeSync(fd);
  }
  return true;
}

export function acquirePidFile(file: string): PidFileLock {
  mkdirSync(path.dirname(file), { recursive: true });
  let replacedStale = false;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (tryCreate(file)) {
      return {
        replacedStale,
        release() {
          // Only remove our own file: a stale-replacing run may own it now.
          try {
            if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
          } catch {
            /* already gone */
          }
        },
      };
    }
    let text = '';
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch {
      continue; // removed meanwhile: try again
    }
    const pid = Number(text);
    if (pid !== process.pid && isSlaposProcess(pid)) throw new AlreadyRunningError(file, pid);
    try {
      unlinkSync(file);
    } catch {
      /* another run removed it first */
    }
    replacedStale = true;
  }
  throw new Error(`cannot create pid file ${file}: it keeps reappearing`);
}
