// Logging: pino, JSON lines to --log-file (for machines), and a short human
// line on stderr ("INFO  message key=value"). -v shows debug, -q only warnings.
import { Writable } from 'node:stream';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger, StreamEntry, Level } from 'pino';
import { pino } from '../vendor/pino.js';
import { writeAboveProgress } from './progress.js';

export type { Logger } from 'pino';

export interface LogOptions {
  verbose?: boolean;
  quiet?: boolean;
  logFile?: string;
  /** Where human lines go (tests capture it). */
  stderr?: NodeJS.WritableStream;
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/**
 * Every log call carries its data as fields (`log.warn({ partition, code }, 'message')`,
 * checked by test/unit/log-fields.test.ts); docs/design.md ("Logs") lists them.
 * Fields of child loggers (`log.child({ partition })`): in every JSON line of
 * --log-file, so the lines of one partition, release, step or loop can be
 * selected; on human lines a partition or release the message does not name leads it
 * (`slappart3: destroyed`, `https://…/software.cfg: installed`), `loop` and `step` never show.
 */
export const CONTEXT_FIELDS = ['loop', 'partition', 'software_release', 'step'] as const;
export type LogContext = Partial<Record<(typeof CONTEXT_FIELDS)[number], string>>;

// `computer`: bound on the root logger once the configuration is read (src/cli/context.ts), one per node: JSON only.
const SKIP = new Set<string>(['level', 'time', 'msg', 'pid', 'hostname', 'err', 'computer', ...CONTEXT_FIELDS]);

/** Formats one pino JSON record as a human line. Exported for tests. */
export function humanLine(record: Record<string, unknown>): string {
  const level = LEVEL_NAMES[Number(record.level)] ?? String(record.level);
  return `${level.padEnd(5)} ${humanMessage(record)}\n`;
}

/** The message of a human line, its fields after it (also a partition's instance.log line). */
export function humanMessage(record: Record<string, unknown>): string {
  const extras = Object.entries(record)
    .filter(([key]) => !SKIP.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  const err = record.err as { message?: string } | undefined;
  let msg = typeof record.msg === 'string' ? record.msg : '';
  // A partition (or, for the software loop, a release URL) given as a field and not named by the
  // message leads the line, as messages used to say it; `loop` stays off (the loop's own lines name it).
  const partition = record.partition;
  const release = record.software_release;
  // (Not inside a partition runner's step, whose lines read without it, as the reference's.)
  if (typeof partition === 'string' && partition !== '') {
    if (record.step === undefined && !msg.includes(partition)) msg = `${partition}: ${msg}`;
  } else if (typeof release === 'string' && release !== '' && !msg.includes(release)) msg = `${release}: ${msg}`;
  // The daemon's lines about one loop ("loop run started", { loop }) name it: "loop instance: run started".
  else if (typeof record.loop === 'string' && msg.startsWith('loop ')) msg = `loop ${record.loop}: ${msg.slice(5)}`;
  // An error logged with its typed fields ({ err }) whose message the text already says is not said twice.
  const said = [msg, ...extras].join(' ');
  const cause = err?.message && !said.includes(err.message.split('\n')[0] ?? '') ? `(${err.message})` : '';
  return [msg, ...extras, cause].filter((x) => x !== '').join(' ');
}

function humanStream(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        // On a terminal showing a progress line, the log line goes above it (never on it).
        let text: string;
        try {
          text = humanLine(JSON.parse(line) as Record<string, unknown>);
        } catch {
          text = `${line}\n`;
        }
        writeAboveProgress(out, text);
      }
      done();
    },
  });
}

export function createLogger(options: LogOptions = {}): Logger {
  const consoleLevel: Level = options.verbose ? 'debug' : options.quiet ? 'warn' : 'info';
  const streams: StreamEntry[] = [{ level: consoleLevel, stream: humanStream(options.stderr ?? process.stderr) }];
  if (options.logFile) {
    mkdirSync(path.dirname(options.logFile), { recursive: true });
    // sync: a CLI run is short and must not lose its last lines on exit.
    streams.push({ level: 'debug', stream: pino.destination({ dest: options.logFile, sync: true, mkdir: true }) });
  }
  // Records below every stream's level are not even built (format logs thousands of debug steps).
  const level: Level = options.logFile ? 'debug' : consoleLevel;
  return pino({ level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime }, pino.multistream(streams));
}
