// What the software loop needs from the master, and the one place where the
// real SLAP client is plugged in. The loop is written against this interface
// only, so it is tested with an in-memory fake and knows nothing of the wire.
import type { SlaposConfig } from '../config/load.js';
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

export class MasterLinkNotWiredError extends Error {
  constructor() {
    super(
      'the software loop is not connected to the SLAP client yet ' +
        '(src/software/master-link.ts: connectSoftwareMaster); nothing was done',
    );
    this.name = 'MasterLinkNotWiredError';
  }
}

/**
 * LEAD: plug the SLAP client here. Expected mapping (computer_id from config):
 *   softwareReleases → getFullComputerInformation(computer_id)._software_release_list
 *                       .map(sr => ({ url: sr._software_release, requestedState: sr._requested_state }))
 *   building  → POST buildingSoftwareRelease {url, computer_id} (ignore HTTP 404)
 *   available → POST availableSoftwareRelease {url, computer_id}
 *   error     → POST softwareReleaseError {url, computer_id, error_log: message}
 *   destroyed → POST destroyedSoftwareRelease {url, computer_id}
 */
export function connectSoftwareMaster(config: SlaposConfig, log: Logger): SoftwareMasterLink {
  void config;
  void log;
  throw new MasterLinkNotWiredError();
}
