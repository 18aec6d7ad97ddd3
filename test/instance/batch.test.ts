// The instance loop's batched supervisord update (src/instance/batch.ts): one
// flush for the partitions that changed their group file, every partition's
// work still one at a time and in order around it.
import test from 'ava';
import { runBatched, type Barrier } from '../../src/instance/batch.js';

/** A trace of what ran: `a:before`, `flush`, `a:after`… */
function tracer() {
  const trace: string[] = [];
  let running = 0;
  let overlapped = false;
  const step = async (name: string) => {
    running++;
    if (running > 1) overlapped = true;
    trace.push(name);
    await new Promise((resolve) => setImmediate(resolve));
    running--;
  };
  return { trace, step, overlapped: () => overlapped };
}

test('partitions that change their group file share one flush; each resumes in order, alone', async (t) => {
  const { trace, step, overlapped } = tracer();
  const changes = new Set(['a', 'c', 'd']);
  await runBatched(['a', 'b', 'c', 'd'], async (id, barrier) => {
    await step(`${id}:before`);
    if (changes.has(id)) await barrier();
    await step(`${id}:after`);
  }, () => step('flush'), 50);
  t.deepEqual(trace, ['a:before', 'b:before', 'b:after', 'c:before', 'd:before', 'flush', 'a:after', 'c:after', 'd:after']);
  t.false(overlapped(), 'no two partitions ran at the same time');
});

test('at most maxBatch partitions wait: a full batch flushes before the next partition starts', async (t) => {
  const { trace, step } = tracer();
  await runBatched([1, 2, 3, 4, 5], async (n, barrier) => {
    await step(`${n}:before`);
    await barrier();
    await step(`${n}:after`);
  }, () => step('flush'), 2);
  t.deepEqual(trace, ['1:before', '2:before', 'flush', '1:after', '2:after', '3:before', '4:before', 'flush', '3:after', '4:after', '5:before', 'flush', '5:after']);
});

test('no partition changed anything: no flush at all', async (t) => {
  let flushes = 0;
  await runBatched(['a', 'b'], async () => undefined, async () => void flushes++, 50);
  t.is(flushes, 0);
});

test('a partition that asks again after resuming gets its own flush right away (force-stop: write, then remove)', async (t) => {
  const { trace, step } = tracer();
  await runBatched(['a', 'b'], async (id, barrier) => {
    await barrier();
    await step(`${id}:first applied`);
    if (id === 'a') {
      await barrier();
      await step('a:second applied');
    }
  }, () => step('flush'), 50);
  t.deepEqual(trace, ['flush', 'a:first applied', 'flush', 'a:second applied', 'b:first applied']);
});

test('a failed flush is the failure of every waiting barrier; the partitions still finish in order', async (t) => {
  const seen: string[] = [];
  await runBatched(['a', 'b'], async (id, barrier: Barrier) => {
    try {
      await barrier();
      seen.push(`${id}:ok`);
    } catch (error) {
      seen.push(`${id}:${(error as Error).message}`);
    }
  }, async () => { throw new Error('reloadConfig failed'); }, 50);
  t.deepEqual(seen, ['a:reloadConfig failed', 'b:reloadConfig failed']);
});

test('a partition that throws (master down) ends the pass; partitions waiting at the barrier are released with the error', async (t) => {
  const seen: string[] = [];
  let flushes = 0;
  const error = await t.throwsAsync(runBatched(['a', 'b', 'c'], async (id, barrier) => {
    if (id === 'b') throw new Error('master down');
    try {
      await barrier();
      seen.push(`${id}:ok`);
    } catch (e) {
      seen.push(`${id}:${(e as Error).message}`);
      throw e;
    }
  }, async () => void flushes++, 50));
  t.is(error?.message, 'master down');
  t.deepEqual(seen, ['a:master down']);
  t.is(flushes, 0);
});
