// An in-memory SoftwareMasterLink that records every call, for loop tests.
import type { SoftwareMasterLink, SoftwareReleaseRequest } from '../../src/software/master-link.js';

export class FakeSoftwareMaster implements SoftwareMasterLink {
  readonly calls: string[] = [];
  readonly errors = new Map<string, string>();
  constructor(public releases: SoftwareReleaseRequest[]) {}
  async softwareReleases() {
    this.calls.push('softwareReleases');
    return this.releases;
  }
  async building(url: string) {
    this.calls.push(`building ${url}`);
  }
  async available(url: string) {
    this.calls.push(`available ${url}`);
  }
  async error(url: string, message: string) {
    this.calls.push(`error ${url}`);
    this.errors.set(url, message);
  }
  async destroyed(url: string) {
    this.calls.push(`destroyed ${url}`);
  }
}
