// A partition's own log, <partition>/.slapgrid/log/instance.log (slapgrid.md
// §4.3): every line logged while processing it, buildout output included, in
// the reference's format; the same lines also go to the node's log.
import { closeSync, constants, fchownSync, fstatSync, writeSync } from 'node:fs';
import { pino } from '../vendor/pino.js';
import { humanMessage, type Logger } from '../util/log.js';
import { INSTANCE_LOG_MAX_BYTES, type PartitionFiles } from '../partition/files.js';
import { openBeneath, relativeTo, renameBeneath, UnsafePathError } from '../safe-fs/index.js';

const LEVELS: Record<number, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal',
};

export interface PartitionLog {
  log: Logger;
  close(): void;
}

/** Opened beneath the partition without links (safe-fs), owner set by descriptor. */
function openLog(files: PartitionFiles, gid: number): number {
  const rel = relativeTo(files.dir, files.instanceLog);
  const flags = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK;
  const open = () => {
    const fd = openBeneath(files.dir, rel, flags, 0o640);
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      throw new UnsafePathError(files.instanceLog, 'not a regular file; refused');
    }
    return fd;
  };
  let fd = open();
  if (fstatSync(fd).size >= INSTANCE_LOG_MAX_BYTES) {
    closeSync(fd);
    renameBeneath(files.dir, rel, `${rel}.1`); // as the reference: one old file, overwritten
    fd = open();
  }
  if (process.getuid?.() === 0) fchownSync(fd, 0, gid);
  return fd;
}

export function partitionLog(parent: Logger, files: PartitionFiles, partitionId: string, gid: number): PartitionLog {
  const fd = openLog(files, gid);
  // Records arrive serialized: their `err` is already the typed fields of the error.
  const forward = parent.child({ partition: partitionId }, { serializers: { err: (err: unknown) => err } });
  const stream = {
    write(line: string) {
      let record: { level: number; time: string; msg?: string; [key: string]: unknown };
      try {
        record = JSON.parse(line) as typeof record;
      } catch {
        return;
      }
      const level = LEVELS[record.level] ?? 'info';
      const msg = record.msg ?? '';
      try {
        writeSync(fd, `[${record.time}] ${level.toUpperCase().padEnd(8)} ${humanMessage(record)}\n`);
      } catch {
        // a full disk must not stop the run; the node's log still has the line
      }
      // The node's log keeps the record's fields (step, typed error fields), under this partition.
      const { level: _level, time: _time, msg: _msg, ...fields } = record;
      forward[level](fields, msg);
    },
  };
  const log = pino({ level: 'debug', base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, stream);
  return {
    log,
    close() {
      closeSync(fd);
    },
  };
}
