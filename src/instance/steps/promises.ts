// Promises of a started partition, forced ("test" mode, slapgrid.md §6.1):
// a failure throws PromiseError, after which the loop posts the error, writes
// no .timestamp, reports no "started" and counts it apart (exit 2).
import { runPartitionPromises } from '../../promise-runner/index.js';
import type { Step } from '../step.js';

export class PromiseError extends Error {
  override name = 'PromiseError';
}

export const promisesStep: Step = {
  name: 'promises',
  async run(r) {
    const result = await runPartitionPromises(
      { id: r.id, path: r.files.dir, uid: r.user.uid, gid: r.user.gid },
      {
        mode: 'test', cgroupParent: r.settings.cgroupParent, timeout: r.settings.promiseTimeout, log: r.log, softwarePath: r.softwarePath ?? undefined,
        plugin: { masterUrl: r.settings.masterUrl, computerId: r.settings.computerId, certificateRepository: r.settings.certificateRepository },
      },
    );
    if (result.error) throw new PromiseError(result.error);
  },
};
