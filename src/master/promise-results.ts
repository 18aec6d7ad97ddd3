// POST /reportPromiseResults (ours; a slapos.core master answers 404 and the
// node carries on): a partition's last promise results, sent by
// `slapos node report` with the usage. Form fields computer_id,
// computer_partition_id and promise_list, a JSON list of
// {name, failed, message, date} (date: unix seconds). Replaces what the
// partition reported before; "failing since" survives while a promise keeps failing.
import type { FastifyInstance } from 'fastify';
import type { Authorize } from './authorize.js';
import type { PromiseRow, Store } from './store.js';
import { badRequest, checkId, notFound } from './validate.js';

export const MAX_PROMISES = 500;
export const MAX_MESSAGE = 4000;

export interface ReportedPromise {
  name: string;
  failed: boolean;
  message: string;
  date: number;
}

/** Checks the JSON list; bad input throws a 400 and nothing is stored. */
export function parsePromiseList(text: string | undefined): ReportedPromise[] {
  let value: unknown;
  try {
    value = JSON.parse(text ?? '');
  } catch {
    throw badRequest('promise_list must be a JSON list');
  }
  if (!Array.isArray(value)) throw badRequest('promise_list must be a JSON list');
  if (value.length > MAX_PROMISES) throw badRequest(`promise_list holds more than ${MAX_PROMISES} promises`);
  return value.map((item, i) => {
    const o = item as Record<string, unknown>;
    if (typeof o !== 'object' || o === null || typeof o.name !== 'string' || o.name === '' || o.name.length > 255 ||
      typeof o.failed !== 'boolean' || typeof o.date !== 'number' || !Number.isFinite(o.date) || (o.message !== undefined && typeof o.message !== 'string')) {
      throw badRequest(`promise_list[${i}] must be {name: non-empty string, failed: boolean, message: string, date: unix seconds}`);
    }
    return { name: o.name, failed: o.failed, message: String(o.message ?? '').slice(0, MAX_MESSAGE), date: o.date };
  });
}

/** The rows to store, keeping each still-failing promise's first failure time (pure). */
export function promiseRows(computer: string, partition: string, reported: ReportedPromise[], previous: PromiseRow[]): PromiseRow[] {
  const before = new Map(previous.map((p) => [p.name, p]));
  return reported.map((p) => {
    const old = before.get(p.name);
    const since = !p.failed ? null : old?.failing_since ?? p.date;
    return {
      computer_reference: computer, partition_reference: partition, name: p.name, status: p.failed ? 'failed' : 'ok',
      message: p.message, checked_at: p.date, failing_since: since,
    };
  });
}

export function registerPromiseResults(app: FastifyInstance, store: Store, authorize: Authorize): void {
  app.post('/reportPromiseResults', async (request, reply) => {
    const f = (request.body ?? {}) as Record<string, string | undefined>;
    const computer = checkId('computer_id', f.computer_id);
    const partition = checkId('computer_partition_id', f.computer_partition_id);
    await authorize(request, { kind: 'partition', computer, partition });
    const reported = parsePromiseList(f.promise_list);
    await store.transaction(async (tx) => {
      if ((await tx.getPartition(computer, partition))?.slap_state !== 'busy') throw notFound(`partition ${partition} of ${computer} is not allocated`);
      await tx.replacePromises(computer, partition, promiseRows(computer, partition, reported, await tx.listPromises(computer).then((rows) => rows.filter((r) => r.partition_reference === partition))));
    });
    return reply.type('text/plain; charset=utf-8').send('OK');
  });
}
