// Progress of long work for a person: one line rewritten in place on a
// terminal, plain lines (one per change, never per tick) in a pipe, nothing
// with --json (the JSON is the output). Rendering is pure; the writer only
// decides where the text goes.

export type ProgressMode = 'tty' | 'plain' | 'off';

export function progressMode(stream: { isTTY?: boolean }, json: boolean, env: NodeJS.ProcessEnv = process.env): ProgressMode {
  if (json) return 'off';
  return stream.isTTY && env.TERM !== 'dumb' ? 'tty' : 'plain';
}

/** 65000 → "1m05s", 3_723_000 → "1h02m03s". */
export function formatElapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (h > 0) return `${h}h${pad(m)}m${pad(sec)}s`;
  if (m > 0) return `${m}m${pad(sec)}s`;
  return `${sec}s`;
}

/** The buildout part a log line announces ("Installing eggs.", "Updating foo.", "Uninstalling bar."), if any. */
export function buildoutPart(line: string): string | undefined {
  const match = /^(?:Installing|Updating|Uninstalling) ([\w.:-]+?)\.?\s*$/.exec(line.trim());
  return match?.[1];
}

/** Cuts `text` to `columns` characters with an ellipsis; control characters (from a hostile log) become spaces. */
export function fit(text: string, columns: number): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  const chars = [...clean];
  if (columns <= 0 || chars.length <= columns) return clean;
  return `${chars.slice(0, Math.max(0, columns - 1)).join('')}…`;
}

export interface BuildState {
  release: string;
  elapsedMs: number;
  part?: string;
  lastLine?: string;
}

/** "building <release> 1m05s, part eggs: <last log line>", cut to the terminal's width. */
export function renderBuild(state: BuildState, columns: number): string {
  const head = `building ${state.release} ${formatElapsed(state.elapsedMs)}${state.part ? `, part ${state.part}` : ''}`;
  return fit(state.lastLine ? `${head}: ${state.lastLine.trim()}` : head, columns);
}

export interface PassState {
  done: number;
  total: number;
  current?: string;
  elapsedMs: number;
}

/** "partitions 3/10 done, slappart3 (12s)". */
export function renderPass(state: PassState, columns: number): string {
  return fit(`partitions ${state.done}/${state.total} done${state.current ? `, ${state.current}` : ''} (${formatElapsed(state.elapsedMs)})`, columns);
}

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

const CLEAR_LINE = '\r\u001b[K';

/** The progress line shown on each terminal stream now (one at a time per stream). */
const shownOn = new Map<ProgressStream, ProgressLine>();

/**
 * Writes `text` (whole lines) to `stream`; if a progress line is shown on that
 * terminal, it is cleared first and drawn again below, in the same write, so a
 * log line never shares the progress line. The logger's terminal stream writes
 * through this (src/util/log.ts).
 */
export function writeAboveProgress(stream: ProgressStream, text: string): void {
  const line = shownOn.get(stream);
  if (line) line.writeAbove(text);
  else stream.write(text);
}

/**
 * Writes rendered lines: on a terminal, rewrites one line (the last one is
 * cleared by done()); in a pipe, writes a line when its `key` (the part, the
 * count) changes, not at every tick.
 */
export class ProgressLine {
  private shown: string | undefined;
  private lastKey: string | undefined;

  constructor(private readonly stream: ProgressStream, private readonly mode: ProgressMode) {}

  get columns(): number {
    return this.mode === 'tty' ? Math.max(20, (this.stream.columns ?? 80) - 1) : 200;
  }

  update(text: string, key: string): void {
    if (this.mode === 'off') return;
    if (this.mode === 'tty') {
      this.stream.write(`${CLEAR_LINE}${text}`);
      this.shown = text;
      shownOn.set(this.stream, this);
      return;
    }
    if (key === this.lastKey) return;
    this.lastKey = key;
    this.stream.write(`${text}\n`);
  }

  /** Lines written while this progress line is shown: above it (cleared, the text, the progress line again). */
  writeAbove(text: string): void {
    if (this.shown === undefined) {
      this.stream.write(text);
      return;
    }
    this.stream.write(`${CLEAR_LINE}${text.endsWith('\n') ? text : `${text}\n`}${this.shown}`);
  }

  /** Clears the terminal line, so that what follows starts on a clean line. */
  done(): void {
    if (this.mode === 'tty' && this.shown !== undefined) this.stream.write(CLEAR_LINE);
    this.shown = undefined;
    if (shownOn.get(this.stream) === this) shownOn.delete(this.stream);
  }
}

/**
 * A software build's progress: the release, its buildout part and last line,
 * redrawn each second on a terminal (elapsed time moves), a line per part in
 * a pipe.
 */
export class BuildProgress {
  private state: BuildState | undefined;
  private started = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly out: ProgressLine, private readonly now: () => number = Date.now) {}

  start(release: string): void {
    this.started = this.now();
    this.state = { release, elapsedMs: 0 };
    this.draw();
    this.timer ??= setInterval(() => this.draw(), 1000).unref();
  }

  line(text: string): void {
    if (!this.state) return;
    const part = buildoutPart(text);
    if (part !== undefined) this.state.part = part;
    if (text.trim() !== '') this.state.lastLine = text;
    this.draw();
  }

  end(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.state = undefined;
    this.out.done();
  }

  private draw(): void {
    if (!this.state) return;
    this.state.elapsedMs = this.now() - this.started;
    // In a pipe, a line per release and part: the last log line and time do not make a new one.
    this.out.update(renderBuild(this.state, this.out.columns), `${this.state.release}\u0000${this.state.part ?? ''}`);
  }
}

/** An instance pass: partitions done out of total, the one in hand, elapsed time. */
export class PassProgress {
  private readonly started: number;

  constructor(private readonly out: ProgressLine, private readonly now: () => number = Date.now) {
    this.started = now();
  }

  update(done: number, total: number, current?: string): void {
    const state: PassState = { done, total, elapsedMs: this.now() - this.started, ...(current ? { current } : {}) };
    this.out.update(renderPass(state, this.out.columns), `${done}/${total}`);
  }

  end(): void {
    this.out.done();
  }
}
