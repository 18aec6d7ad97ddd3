// The partitions' last promise results, sent to the master with the usage
// (`slapos node report`): POST reportPromiseResults, one call per allocated
// partition. Ours only: a slapos.core master answers 404, and the node then
// stops sending for this run, without error (the reference ignores what it does not know;
// we do not send it what it cannot take, so nothing else is at risk).
import type { SlapClient } from '../slap/client.js';
import { SlapHttpError } from '../slap/errors.js';
import { readPromiseStatus, type PromiseStatusLine } from '../promise-runner/status.js';
import type { Logger } from '../util/log.js';

/** "YYYY-MM-DDTHH:MM:SS+0000" (the status files' date) → unix seconds; unreadable → `fallback`. */
export function statusDate(date: string, fallback: number): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})/.exec(date);
  if (!m) return fallback;
  const at = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) / 1000;
  return Number.isFinite(at) ? at : fallback;
}

export const promiseList = (lines: PromiseStatusLine[], now: number) =>
  lines.map((l) => ({ name: l.name || l.title, failed: l.failed, message: l.message.slice(0, 4000), date: statusDate(l.date, now) }));

export interface PromiseReportResult {
  sent: number;
  /** The master does not take promise results (a slapos.core master). */
  unsupported: boolean;
  errors: string[];
}

export async function sendPromiseResults(
  client: SlapClient, computerId: string, instanceRoot: string, partitionBaseName: string, allocated: ReadonlySet<string>, log: Logger, now: number,
): Promise<PromiseReportResult> {
  const result: PromiseReportResult = { sent: 0, unsupported: false, errors: [] };
  const status = readPromiseStatus(instanceRoot, partitionBaseName);
  for (const [partition, lines] of Object.entries(status)) {
    if (!allocated.has(partition)) continue;
    try {
      await client.call('POST', 'reportPromiseResults', {
        computer_id: computerId, computer_partition_id: partition, promise_list: JSON.stringify(promiseList(lines, now)),
      });
      result.sent += 1;
    } catch (error) {
      if (error instanceof SlapHttpError && (error.status === 404 || error.status === 405)) {
        result.unsupported = true;
        log.info('the master does not take promise results (not ours): not sent');
        break;
      }
      result.errors.push(`${partition}: ${(error as Error).message}`);
      log.warn({ code: 'PROMISE_REPORT_FAILED', partition, err: error }, 'promise results not sent');
    }
  }
  return result;
}
