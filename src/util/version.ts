// The project's name and version, from package.json: the one place the
// version is written (slapos --version, the computer's slapos_version, the
// master's /metrics and the Debian package all read it). Read once, when asked.
import { readFileSync } from 'node:fs';

export interface ProjectPackage {
  name: string;
  version: string;
}

let cached: ProjectPackage | undefined;

export function projectPackage(): ProjectPackage {
  // dist/src/util/version.js → the checkout's (or /opt/slapos-node's) package.json.
  cached ??= JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as ProjectPackage;
  return cached;
}

export function projectVersion(): string {
  return projectPackage().version;
}
