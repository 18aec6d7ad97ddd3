// File events that should start an instance pass at once instead of at the
// next minute: the watchdog's bang file in a partition, a partition's request
// transaction file, and a software release's .completed.
//
// fs.watch (inotify), not chokidar: the layout is fixed and two levels deep
// (<root>/<dir>/<file>), so one non-recursive watch per root and per
// partition or release directory is all that is needed — a few hundred
// inotify watches on one inotify descriptor. A recursive watch would walk the
// software releases' huge trees. chokidar (the design card's package) was
// measured on the same layout (README, dependency table): it puts a watch on
// every file (10,213 inotify watches instead of 212 for 200 partitions and 10
// releases) and takes a second and 113 MiB to get ready, for guarantees we do
// not need, since the schedule remains the safety net (a missed event delays
// a pass by at most one period).
import { existsSync, readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../util/log.js';

const COALESCE_MS = 250;

export type EventKind = 'bang' | 'request' | 'software_completed';

export interface FileEvent {
  kind: EventKind;
  path: string;
  /** Same file again within a moment (one write is several inotify events). */
  repeat: boolean;
}

/** Which event a file name in a partition (instance) or release (software) directory is. */
export function classify(area: 'instance' | 'software', fileName: string): EventKind | undefined {
  if (area === 'instance') {
    if (fileName === '.slapos_latest_bang_timestamp') return 'bang';
    if (fileName.startsWith('.slapos-request-transaction-')) return 'request';
    return undefined;
  }
  return fileName === '.completed' ? 'software_completed' : undefined;
}

class AreaWatcher {
  private rootWatch: FSWatcher | undefined;
  private readonly dirs = new Map<string, FSWatcher>();
  /** Last event time per file, to tell repeats. */
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly root: string,
    private readonly area: 'instance' | 'software',
    private readonly onEvent: (event: FileEvent) => void,
    private readonly log: Logger,
  ) {}

  /** Watches the root and each directory in it; cheap enough to call every few seconds. */
  sync(): void {
    if (!this.rootWatch) {
      if (!existsSync(this.root)) return;
      try {
        this.rootWatch = watch(this.root, { persistent: false }, () => this.sync());
        this.rootWatch.on('error', () => this.dropRoot());
      } catch (error) {
        this.log.warn({ code: 'WATCH_FAILED', path: this.root, err: error }, 'cannot watch');
        return;
      }
    }
    let names: string[];
    try {
      names = readdirSync(this.root);
    } catch {
      this.dropRoot();
      return;
    }
    const present = new Set(names);
    for (const [name, watcher] of this.dirs) {
      if (!present.has(name)) {
        watcher.close();
        this.dirs.delete(name);
      }
    }
    for (const name of names) {
      if (this.dirs.has(name)) continue;
      const dir = path.join(this.root, name);
      try {
        if (!statSync(dir).isDirectory()) continue;
        const watcher = watch(dir, { persistent: false }, (_type, file) => this.fileChanged(dir, file));
        watcher.on('error', () => {
          watcher.close();
          this.dirs.delete(name);
        });
        this.dirs.set(name, watcher);
      } catch {
        // Removed meanwhile, or not readable: the next sync tries again.
      }
    }
  }

  private fileChanged(dir: string, file: string | Buffer | null): void {
    if (file === null) return;
    const name = file.toString();
    const kind = classify(this.area, name);
    const full = path.join(dir, name);
    // A deletion (the instance loop removes request files it handled) is no reason to run.
    if (!kind || !existsSync(full)) return;
    const now = Date.now();
    const repeat = now - (this.recent.get(full) ?? 0) < COALESCE_MS;
    if (this.recent.size > 10_000) this.recent.clear();
    this.recent.set(full, now);
    // Repeats still reach the scheduler (its debounce merges them): dropping
    // one could lose a bang written just after a pass read the partition.
    this.onEvent({ kind, path: full, repeat });
  }

  private dropRoot(): void {
    this.rootWatch?.close();
    this.rootWatch = undefined;
    for (const watcher of this.dirs.values()) watcher.close();
    this.dirs.clear();
  }

  get watchCount(): number {
    return this.dirs.size + (this.rootWatch ? 1 : 0);
  }

  close(): void {
    this.dropRoot();
  }
}

export class NodeWatcher {
  private readonly areas: AreaWatcher[];
  private timer: NodeJS.Timeout | undefined;

  constructor(roots: { instanceRoot: string; softwareRoot?: string | undefined }, onEvent: (event: FileEvent) => void, log: Logger) {
    this.areas = [new AreaWatcher(roots.instanceRoot, 'instance', onEvent, log)];
    if (roots.softwareRoot) this.areas.push(new AreaWatcher(roots.softwareRoot, 'software', onEvent, log));
  }

  /** Starts watching; roots that do not exist yet are picked up by a periodic re-scan. */
  start(rescanMs = 30_000): void {
    for (const area of this.areas) area.sync();
    this.timer = setInterval(() => this.sync(), rescanMs);
    this.timer.unref();
  }

  sync(): void {
    for (const area of this.areas) area.sync();
  }

  get watchCount(): number {
    return this.areas.reduce((n, a) => n + a.watchCount, 0);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    for (const area of this.areas) area.close();
  }
}
