// What the software loop needs from the master, and the one place where the
// real SLAP client is plugged in. The loop is written against this interface
// only, so it is tested with an in-memory fake and knows nothing of the wire.
import { requireKeys, type SlaposConfig } from '../config/load.js';
import { slapClientFromConfig } from '../slap/connect.js';
import { SlapNotFoundError } from '../slap/errors.js';
import type { Logger } from '../util/log.js';

export type SoftwareRequestedState = 'available' | 'destroyed';

export interface SoftwareReleaseRequest {
  url: string;
  /** Other states the master may send are ignored by the loop (as the reference). */
  requestedState: SoftwareRequestedState | (string & {});
}

/**
 * The computer's software releases and the four reports about them. Every
 * method may reject (master unreachable, HTTP error); the loop treats a
 * rejection of a report as a failure of that release, and a rejection of
 * softwareReleases() as a failure of the whole run (exit 1).
 */
export interface SoftwareMasterLink {
  /** getFullComputerInformation → _software_release_list, in the master's order. */
  softwareReleases(): Promise<SoftwareReleaseRequest[]>;
  /** buildingSoftwareRelease; a 404 must be ignored by the implementation (as the reference). */
  building(url: string): Promise<void>;
  /** availableSoftwareRelease. */
  available(url: string): Promise<void>;
  /** softwareReleaseError with error_log = message. */
  error(url: string, message: string): Promise<void>;
  /** destroyedSoftwareRelease (sent even when nothing was on disk). */
  destroyed(url: string): Promise<void>;
}

/** The software loop's view of the master, through the SLAP client. */
export function connectSoftwareMaster(config: SlaposConfig, log: Logger): SoftwareMasterLink {
  const { computer_id: computerId } = requireKeys(config, 'slapos', ['computer_id', 'master_url']);
  const client = slapClientFromConfig(config);
  return {
    async softwareReleases() {
      const computer = await client.getFullComputerInformation(computerId);
      return computer.softwareReleases.map((sr) => ({ url: sr.url, requestedState: sr.requestedState ?? 'available' }));
    },
    async building(url) {
      try {
        await client.buildingSoftwareRelease(url, computerId);
      } catch (error) {
        // As the reference: a master that does not track building states answers 404.
        if (error instanceof SlapNotFoundError) log.debug({ url }, 'master ignored the building report (404)');
        else throw error;
      }
    },
    available: (url) => client.availableSoftwareRelease(url, computerId),
    error: (url, message) => client.softwareReleaseError(url, computerId, message),
    destroyed: (url) => client.destroyedSoftwareRelease(url, computerId),
  };
}
