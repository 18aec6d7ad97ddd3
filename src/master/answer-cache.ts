// Rendered getFullComputerInformation answers, keyed by computer and its
// generation (store.ts): an entry is only served for the exact generation it
// was rendered from, so it can never be stale, on one master or several.
// Least-recently-used eviction under a byte budget.

export class AnswerCache {
  private readonly entries = new Map<string, { generation: number; body: string }>();
  private bytes = 0;

  constructor(private readonly maxBytes = 256 * 1024 * 1024) {}

  get(key: string, generation: number): string | undefined {
    const entry = this.entries.get(key);
    if (!entry || entry.generation !== generation) return undefined;
    // Re-insert: Map order is the recency order.
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.body;
  }

  set(key: string, generation: number, body: string): void {
    const size = body.length * 2;
    if (size > this.maxBytes) return;
    this.delete(key);
    this.entries.set(key, { generation, body });
    this.bytes += size;
    for (const [oldest] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.delete(oldest);
    }
  }

  private delete(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.bytes -= entry.body.length * 2;
    this.entries.delete(key);
  }
}
