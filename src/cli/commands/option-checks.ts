// Checks of the options that `configure client`, `configure local` and
// `node register` share (URLs, files, network settings), so that each gives
// the same clear error, naming the option, before anything is written.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { CliError } from '../exit.js';

/** Each given option of `flags` (commander's key → the flag to name) holds a URL. */
export function checkUrlOptions(options: Record<string, unknown>, flags: Record<string, string>): void {
  for (const [key, flag] of Object.entries(flags)) {
    if (options[key] === undefined) continue;
    try {
      new URL(String(options[key]));
    } catch {
      throw new CliError(`${flag}: not a URL: ${String(options[key])}`);
    }
  }
}

/** The content of the file an option names, or an error naming the option and the reason. */
export function readOptionFile(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new CliError(`${flag}: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/** A certificate and its key are given together or not at all; both are readable. */
export function readPairOptions(certFlag: string, certFile: unknown, keyFlag: string, keyFile: unknown): { certificate: Buffer; key: Buffer } | undefined {
  if ((certFile === undefined) !== (keyFile === undefined)) throw new CliError(`give ${certFlag} and ${keyFlag} together`);
  if (certFile === undefined || keyFile === undefined) return undefined;
  return { certificate: readOptionFile(certFlag, String(certFile)), key: readOptionFile(keyFlag, String(keyFile)) };
}

/** [slapformat] ipv4_local_network: an IPv4 network in CIDR form. */
export function checkIpv4Network(flag: string, value: string): void {
  const [net, bits] = value.split('/');
  if (isIP(net ?? '') !== 4 || !/^\d{1,2}$/.test(bits ?? '') || Number(bits) > 32) throw new CliError(`${flag}: not an IPv4 network: ${value}`);
}

/** A network interface name as the kernel takes it (at most 15 characters). */
export function checkInterfaceName(flag: string, value: string): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(value)) throw new CliError(`${flag}: not an interface name: ${value}`);
}
