// Rendered getFullComputerInformation answers, keyed by computer and its
// generation (store.ts): an entry is only served for the exact generation it
// was rendered from, so it can never be stale, on one master or several.
// Least-recently-used eviction under a byte budget.
//
// Entries are kept gzipped (level 1): an answer for 20 partitions is ~26 KB
// of XML and ~1.8 KB gzipped, so 20,000 computers fit in ~36 MB instead of
// ~1 GB as JS strings; uncached, every poll would render afresh (~2.5 ms of
// CPU against ~0.1 ms to inflate). Clients that accept gzip get it as is.
import { gunzipSync, gzipSync } from 'node:zlib';

export class AnswerCache {
  private readonly entries = new Map<string, { generation: number; gzip: Buffer }>();
  private bytes = 0;

  constructor(private readonly maxBytes = 256 * 1024 * 1024) {}

  /** The gzipped answer rendered for exactly this generation, if kept. */
  get(key: string, generation: number): Buffer | undefined {
    const entry = this.entries.get(key);
    if (!entry || entry.generation !== generation) return undefined;
    // Re-insert: Map order is the recency order.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.gzip;
  }

  /** Keeps `body` (gzipped) for this generation; returns the gzip. */
  set(key: string, generation: number, body: string): Buffer {
    const gzip = gzipSync(body, { level: 1 });
    if (gzip.length > this.maxBytes) return gzip;
    this.delete(key);
    this.entries.set(key, { generation, gzip });
    this.bytes += gzip.length;
    for (const [oldest] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.delete(oldest);
    }
    return gzip;
  }

  private delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.bytes -= entry.gzip.length;
    this.entries.delete(key);
  }
}

/** The answer a cache entry holds (UTF-8 bytes; answers are ASCII). */
export function inflateAnswer(gzip: Buffer): Buffer {
  return gunzipSync(gzip);
}

/** Whether an Accept-Encoding header lets us send gzip as is (q=0 refuses it). */
export function acceptsGzip(header: string | string[] | undefined): boolean {
  const value = Array.isArray(header) ? header.join(',') : header ?? '';
  return value.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';').map((s) => s.trim());
    if (coding !== 'gzip' && coding !== '*') return false;
    const q = params.find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}
