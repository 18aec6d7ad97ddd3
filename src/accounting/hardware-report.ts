// The node's hardware status sent to the master with the usage (`slapos node
// report`): POST reportHardwareStatus, a call of ours only, separate from
// useComputer so the reference's TioXML journal stays exactly the reference's.
// A slapos.core master answers 404: the node then sends nothing more of it in
// this run, without error (the reference ignores what it does not know).
import type { SlapClient } from '../slap/client.js';
import { SlapHttpError } from '../slap/errors.js';
import { hardwareReport } from '../slap/hardware-report.js';
import type { Logger } from '../util/log.js';
import { readHardwareStatusFile } from './hardware.js';

export type HardwareReportOutcome = 'sent' | 'none' | 'unsupported' | 'failed';

/** Sends the last hardware-status.json `node collect` wrote ("none": collect has not written one yet). */
export async function sendHardwareStatus(client: SlapClient, computerId: string, file: string, log: Logger): Promise<HardwareReportOutcome> {
  let report;
  try {
    const document = readHardwareStatusFile(file);
    if (document === null) return 'none';
    report = hardwareReport(document);
  } catch (error) {
    log.warn({ code: 'HARDWARE_STATUS_UNREADABLE', file, err: error }, 'hardware status not sent: the file is not what collect writes');
    return 'failed';
  }
  try {
    await client.call('POST', 'reportHardwareStatus', { computer_id: computerId, hardware_status: JSON.stringify(report) });
    return 'sent';
  } catch (error) {
    if (error instanceof SlapHttpError && (error.status === 404 || error.status === 405)) {
      log.info('the master does not take hardware status (not ours): not sent');
      return 'unsupported';
    }
    log.warn({ code: 'HARDWARE_REPORT_FAILED', err: error }, 'hardware status not sent');
    return 'failed';
  }
}
