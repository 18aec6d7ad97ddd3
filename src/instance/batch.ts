// One supervisord update for many partitions (issue 29). supervisord's
// reloadConfig re-reads every group file, so an update per changed partition
// costs O(N) each and O(N²) a pass. Here the partitions still run strictly
// one after the other; only the point where a partition asks for the update
// (its group file written or removed) becomes a barrier: the partition waits
// there while the next ones run up to their own barrier, then one update
// applies every file and the waiting partitions resume, one at a time, in
// their order. A partition resumed after the update that asks again (its
// second change) gets its own update at once.

/** Called by a task that needs supervisord to apply the files it changed. */
export type Barrier = () => Promise<void>;

interface Suspended {
  resume(error?: unknown): void;
  done: Promise<void>;
}

/**
 * Runs `work` for each item, one at a time except that tasks waiting at their
 * barrier stay suspended while later ones run; `flush` runs once when every
 * admitted task is done or suspended and either `maxBatch` are suspended or
 * no item is left. A flush failure is the failure of each suspended barrier.
 */
export async function runBatched<T>(
  items: readonly T[],
  work: (item: T, barrier: Barrier) => Promise<void>,
  flush: () => Promise<void>,
  maxBatch: number,
): Promise<void> {
  let next = 0;
  while (next < items.length) {
    const suspended: Suspended[] = [];
    try {
      while (next < items.length && suspended.length < maxBatch) {
        const item = items[next++]!;
        let signal!: () => void;
        const reached = new Promise<'suspended'>((resolve) => (signal = () => resolve('suspended')));
        let gate: { resolve(): void; reject(error: unknown): void } | undefined;
        let resumed = false;
        const barrier: Barrier = () => {
          // Once resumed, this task runs alone: its later changes apply right away.
          if (resumed) return flush();
          return new Promise<void>((resolve, reject) => {
            gate = { resolve, reject };
            signal();
          });
        };
        const done = work(item, barrier);
        if ((await Promise.race([done.then(() => 'done' as const), reached])) === 'suspended') {
          suspended.push({
            resume: (error) => {
              resumed = true;
              if (error === undefined) gate!.resolve();
              else gate!.reject(error);
            },
            done,
          });
        }
      }
    } catch (error) {
      // A task failed outright (e.g. the master went down): the suspended ones end with it.
      for (const s of suspended) {
        s.resume(error);
        await s.done.catch(() => undefined);
      }
      throw error;
    }
    if (suspended.length === 0) continue;
    let failure: unknown;
    try {
      await flush();
    } catch (error) {
      failure = error ?? new Error('supervisord update failed');
    }
    for (let i = 0; i < suspended.length; i++) {
      suspended[i]!.resume(failure);
      try {
        await suspended[i]!.done;
      } catch (error) {
        for (const s of suspended.slice(i + 1)) {
          s.resume(error);
          await s.done.catch(() => undefined);
        }
        throw error;
      }
    }
  }
}
