// The text appended to the release's instance.cfg to make a partition's
// buildout.cfg (slapgrid.md §4.4, the reference's buildout-tail.cfg.in), plus
// our [slapos-node-configuration] (never [slap-configuration]: see configuration.ts). Pure.
import { buildoutValue } from './configuration.js';

export interface TailInput {
  computerId: string;
  partitionId: string;
  masterUrl: string;
  softwareReleaseUrl: string;
  /** <certificate_repository_path>/<id>.key / .crt, or '' without a repository. */
  keyFile: string;
  certFile: string;
  sharedPartList: readonly string[];
  buildTimePartList: readonly string[];
  requestedState: string;
  storageHome: string;
  ipv4GlobalNetwork: string;
  /** The [slapos-node-configuration] section (configuration.ts). */
  slapConfiguration: string;
}

const multiline = (items: readonly string[]) => items.map((item) => `\n  ${item}`).join('');

export function buildoutTail(t: TailInput): string {
  const v = buildoutValue;
  return [
    '# This is beginning of zc.buildout profile\'s tail added by slapos node',
    '[buildout]',
    '# put buildout generated binaries in specific directory',
    'bin-directory = ${buildout:directory}/sbin',
    '# protect software and run parts offline',
    'offline = true',
    '',
    '[slap-connection]',
    `computer-id =${v(t.computerId)}`,
    `partition-id =${v(t.partitionId)}`,
    `server-url =${v(t.masterUrl)}`,
    `software-release-url =${v(t.softwareReleaseUrl)}`,
    `key-file =${v(t.keyFile)}`,
    `cert-file =${v(t.certFile)}`,
    `shared-part-list =${multiline(t.sharedPartList)}`,
    `build-time-part-list =${multiline(t.buildTimePartList)}`,
    `requested-state =${v(t.requestedState)}`,
    '',
    '# Kept for backward compatibility',
    '[slap_connection]',
    `computer_id =${v(t.computerId)}`,
    `partition_id =${v(t.partitionId)}`,
    `server_url =${v(t.masterUrl)}`,
    `software_release_url =${v(t.softwareReleaseUrl)}`,
    `key_file =${v(t.keyFile)}`,
    `cert_file =${v(t.certFile)}`,
    '',
    '[storage-configuration]',
    `storage-home =${v(t.storageHome)}`,
    '',
    '[network-information]',
    `global-ipv4-network =${v(t.ipv4GlobalNetwork)}`,
    '',
    t.slapConfiguration.trimEnd(),
    '# This is end of zc.buildout profile\'s tail added by slapos node',
    '',
  ].join('\n');
}

/** buildout.cfg = the release's template, a blank line, the tail (as the reference). */
export function partitionBuildoutCfg(template: string, tail: string): string {
  return `${template}\n\n${tail}`;
}
