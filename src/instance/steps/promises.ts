// Where promises will run (slapgrid.md §6; a later change). A promise failure
// is to throw PromiseError: the loop then posts the error, writes no
// .timestamp, and counts it apart (exit 2).
import type { Step } from '../step.js';

export class PromiseError extends Error {
  override name = 'PromiseError';
}

export const promisesStep: Step = {
  name: 'promises',
  async run(r) {
    r.log.debug(`promises of ${r.id}: not run (not implemented yet)`);
  },
};
