// `slapos --version` (and `--version --json`): the project, its version, and
// the SLAP protocol level it speaks. package.json is read only when asked, so
// that no other command pays for it at start-up.
import { projectPackage } from '../util/version.js';

/** The slapos.core release whose SLAP protocol, files and commands we follow (docs/master.md, slap-protocol.md). */
export const SLAP_COMPATIBILITY = 'slapos.core 1.24';

export interface VersionInfo {
  name: string;
  version: string;
  slap_compatibility: string;
}

export function versionInfo(): VersionInfo {
  const parsed = projectPackage();
  return { name: parsed.name, version: parsed.version, slap_compatibility: SLAP_COMPATIBILITY };
}

/**
 * The text for `--version` when argv asks for it anywhere before `--`
 * (`slapos --version`, `slapos node format -V`: as commander did, the version
 * is printed and nothing runs), with `--json` among the arguments for JSON; else undefined.
 */
export function versionRequest(args: readonly string[]): string | undefined {
  const end = args.indexOf('--');
  const options = end === -1 ? args : args.slice(0, end);
  if (!options.includes('--version') && !options.includes('-V')) return undefined;
  const info = versionInfo();
  if (options.includes('--json')) return `${JSON.stringify(info)}\n`;
  return `${info.name} ${info.version} (SLAP protocol of ${info.slap_compatibility})\n`;
}
