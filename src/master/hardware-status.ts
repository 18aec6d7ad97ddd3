// POST /reportHardwareStatus (ours; a slapos.core master answers 404 and the
// node carries on): a computer's hardware status, sent by `slapos node report`
// with the usage. Form fields computer_id and hardware_status, the JSON of
// src/slap/hardware-report.ts. A separate call rather than extra elements in
// useComputer's TioXML: the reference's journal stays valid and unchanged.
// Checked and reduced to the known fields before it is stored (replacing the last one).
import type { FastifyInstance } from 'fastify';
import { hardwareReport, MAX_HARDWARE_REPORT, type HardwareReport } from '../slap/hardware-report.js';
import type { Authorize } from './authorize.js';
import type { Store } from './store.js';
import { badRequest, checkId, notFound } from './validate.js';

/** The report in a form field; bad input throws a 400 naming the field, and nothing is stored. */
export function parseHardwareField(value: string | undefined): HardwareReport {
  if (value === undefined || value === '') throw badRequest('missing hardware_status');
  if (value.length > MAX_HARDWARE_REPORT) throw badRequest(`hardware_status is longer than ${MAX_HARDWARE_REPORT} characters`);
  let document: unknown;
  try {
    document = JSON.parse(value);
  } catch {
    throw badRequest('hardware_status must be JSON');
  }
  try {
    return hardwareReport(document);
  } catch (error) {
    throw badRequest((error as Error).message);
  }
}

export function registerHardwareStatus(app: FastifyInstance, store: Store, authorize: Authorize, now = () => Date.now() / 1000): void {
  app.post('/reportHardwareStatus', async (request, reply) => {
    const f = (request.body ?? {}) as Record<string, string | undefined>;
    const computer = checkId('computer_id', f.computer_id);
    await authorize(request, { kind: 'computer', computer });
    const report = parseHardwareField(f.hardware_status);
    await store.transaction(async (tx) => {
      if (!(await tx.getComputer(computer))) throw notFound(`no computer ${computer}`);
      await tx.putHardware({ computer_reference: computer, document: JSON.stringify(report), reported_at: now() });
    });
    return reply.type('text/plain; charset=utf-8').send('OK');
  });
}
