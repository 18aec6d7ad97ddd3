// The end of the reference's "installation transaction" (slapgrid.md §4.8): the
// slap library inside the instance buildout wrote one requested title per line
// into <partition>/.slapos-request-transaction-<id>; after a successful run the
// node posts those titles with updateComputerPartitionRelatedInstanceList, so
// that the master can destroy the children the partition no longer requests.
// No file (the buildout never registered with slap): nothing is posted. A master
// without the route (the reference's proxy answers 404) gets a warning only.
import { readTextNoFollow } from '../../partition/state.js';
import { SlapHttpError } from '../../slap/errors.js';
import type { Step } from '../step.js';

/** The file's non-empty lines, in order (as the reference). Pure. */
export function transactionTitles(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

export const relatedInstancesStep: Step = {
  name: 'related-instances',
  async run(r) {
    // The file belongs to the partition user: never followed if a link, bounded, never blocking.
    const text = readTextNoFollow(r.files.transaction);
    if (text === undefined) return;
    const titles = transactionTitles(text);
    try {
      await r.link.related(r.id, titles);
    } catch (error) {
      if (!(error instanceof SlapHttpError && error.status === 404)) throw error;
      r.log.warn(
        { code: 'MASTER_NOT_IMPLEMENTED', endpoint: error.endpoint },
        'NotFoundError: Cannot send requested instance list to master. Please check if this feature is implemented on SlapOS Master.',
      );
    }
  },
};
