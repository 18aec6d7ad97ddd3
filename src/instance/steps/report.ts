// Telling the master the partition's new state (slapgrid.md §4.3 step 6).
import type { Step } from '../step.js';

export const reportStartedStep: Step = {
  name: 'report-started',
  async run(r) {
    await r.link.started(r.id);
  },
};

export const reportStoppedStep: Step = {
  name: 'report-stopped',
  async run(r) {
    // As the reference: a failed "stopped" report is not the partition's failure.
    try {
      await r.link.stopped(r.id);
    } catch (error) {
      r.log.warn({ code: 'MASTER_REPORT_FAILED', partition: r.id, err: error }, 'could not report stopped');
    }
  },
};
