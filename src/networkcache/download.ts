// Installing a release from the binary cache (networkcache.md §3–§4), the
// node's way: only entries signed by a trusted certificate and compatible
// with this machine; the blob streams to a root-private temporary file with
// its sha512 checked; the tarball is then unpacked AS THE SOFTWARE USER by
// the extraction worker through the executor (member checks and limits in
// member-policy.ts), and appears under <software_root>/<hash> in one rename.
// Any failure is an outcome, not an exception: the caller builds instead.
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runAs } from '../executor/index.js';
import { killPoint } from '../util/kill-point.js';
import type { Logger } from '../util/log.js';
import { DOWNLOAD_KILL_POINTS, EXTRACT_KILL_POINTS } from './kill-points.js';
import { downloadBlob, listEntries, redact } from './client.js';
import { machineInfo } from './machine.js';
import { candidates, type MachineInfo } from './select.js';
import { matchPrefix, type CacheSettings } from './settings.js';
import { parseCertificateList, verifyMetadata } from './signature.js';

const killAt = process.env['SLAPOS_TEST_KILL_AT'];

export const EXTRACT_WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'extract-worker.js');

export interface CacheUser {
  uid: number;
  gid: number;
  name: string;
}

/** One release and the node's cache settings: what a download and an upload both start from. */
export interface CacheJob {
  settings: CacheSettings;
  url: string;
  hash: string;
  softwareRoot: string;
  /** Who unpacks or packs (the software user); undefined: ourselves (not root). */
  user: CacheUser | undefined;
  log: Logger;
  machine?: MachineInfo;
}

export interface DownloadRequest extends CacheJob {
  /** Extraction time limit (ms). */
  timeoutMs?: number;
}

export type DownloadOutcome =
  | { ok: true; seconds: number; sha512: string; bytes: number; members: number; unpackedBytes: number }
  | { ok: false; seconds: number; reason: string };

/** Whether the node should try the cache at all for this URL (configured and not blacklisted); the reason if not. */
export function downloadSkipReason(settings: CacheSettings, url: string): string | undefined {
  if (!settings.downloadCacheUrl || !settings.downloadDirUrl) return 'binary cache not configured (download-binary-cache-url, download-binary-dir-url)';
  const prefix = matchPrefix(url, settings.downloadBlacklist);
  if (prefix !== undefined) return `URL is blacklisted (download-from-binary-cache-url-blacklist: ${prefix})`;
  return undefined;
}

const [DOWNLOADED, EXTRACTED] = DOWNLOAD_KILL_POINTS;
const TEMP_PREFIX = 'slapos-cache-';

/**
 * Temporary directories of downloads whose node was killed: ours are named
 * slapos-cache-<pid>-XXXXXX, owned by root; those of a dead pid go (those of
 * a live one may be another node's download in progress).
 */
export function removeStaleDownloads(tmp = os.tmpdir()): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(tmp)) {
    const pid = new RegExp(`^${TEMP_PREFIX}(\\d+)-`).exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid || alive(Number(pid))) continue;
    const full = path.join(tmp, name);
    try {
      const st = lstatSync(full);
      if (!st.isDirectory() || st.uid !== (process.getuid?.() ?? st.uid)) continue;
      rmSync(full, { recursive: true, force: true });
      removed.push(full);
    } catch {
      // gone meanwhile
    }
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function downloadRelease(request: DownloadRequest): Promise<DownloadOutcome> {
  const started = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
  const fail = (reason: string): DownloadOutcome => ({ ok: false, seconds: seconds(), reason });
  const { settings, log } = request;
  const skip = downloadSkipReason(settings, request.url);
  if (skip) return fail(skip);
  const cacheUrl = settings.downloadCacheUrl as string;
  const dirUrl = settings.downloadDirUrl as string;
  const trusted = parseCertificateList(settings.certificateList, (index, error) =>
    log.info({ certificate: index + 1, err: error }, 'signature-certificate-list: certificate ignored'));
  if (trusted.length === 0) return fail('no trusted certificate (signature-certificate-list): nothing in the cache can be trusted');
  log.info({ software_release: request.url, cache: redact(dirUrl) }, 'downloading the binary from the network cache');
  let entries;
  try {
    // An HTTPS cache with its own CA: shadir-ca-file/shacache-ca-file are the trust
    // roots. As the reference, a download sends no client certificate.
    entries = await listEntries(dirUrl, request.hash, { ca: settings.tls['shadir-ca-file'] });
  } catch (error) {
    return fail(`cannot list ${request.hash}: ${(error as Error).message}`);
  }
  if (!entries || entries.length === 0) return fail('no entry in the cache');
  const machine = request.machine ?? machineInfo();
  const usable = candidates(entries, (e) => verifyMetadata(e.metadata, e.signature, trusted), machine);
  if (usable.length === 0) return fail(`none of the ${entries.length} entries is signed by a trusted certificate and built for ${machine.multiarch} ${machine.os.join(' ')}`);
  // Root-private except for the one file the software user must read.
  const tmp = mkdtempSync(path.join(os.tmpdir(), `${TEMP_PREFIX}${process.pid}-`));
  try {
    chmodSync(tmp, 0o711);
    const problems: string[] = [];
    for (const [index, candidate] of usable.entries()) {
      const file = path.join(tmp, `release-${index}.tar`);
      let bytes: number;
      try {
        bytes = await downloadBlob(cacheUrl, candidate.sha512, file, settings.limits.maxBytes, { ca: settings.tls['shacache-ca-file'] });
      } catch (error) {
        problems.push((error as Error).message);
        rmSync(file, { force: true });
        continue;
      }
      chmodSync(file, 0o644);
      killPoint(DOWNLOADED);
      log.info({ bytes, user: request.user?.name ?? 'this user' }, 'extracting archive of cached software release');
      const result = await runAs({
        argv: [process.execPath, EXTRACT_WORKER, file, request.softwareRoot, request.hash, String(settings.limits.maxBytes), String(settings.limits.maxMembers)],
        user: request.user ? { ...request.user, home: request.softwareRoot } : undefined,
        umask: 0o022,
        // Tests only: the worker's own kill points (kill-points.ts).
        env: killAt !== undefined ? { SLAPOS_TEST_KILL_AT: killAt } : {},
        cwd: request.softwareRoot,
        timeoutMs: request.timeoutMs ?? 3600_000,
        maxOutput: 16 * 1024,
      });
      if (killAt !== undefined && result.signal === 'SIGKILL' && (EXTRACT_KILL_POINTS as readonly string[]).includes(killAt)) killPoint(killAt);
      if (result.exitCode !== 0) {
        const why = result.timedOut ? 'timed out' : (result.spawnError ?? result.output.trim()) || `exit ${result.exitCode ?? result.signal}`;
        return fail(`extraction refused or failed: ${why}`);
      }
      killPoint(EXTRACTED);
      const totals = JSON.parse(result.output.trim().split('\n').pop() ?? '{}') as { members?: number; bytes?: number };
      return { ok: true, seconds: seconds(), sha512: candidate.sha512, bytes, members: totals.members ?? 0, unpackedBytes: totals.bytes ?? 0 };
    }
    return fail(`download failed: ${problems.join('; ')}`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
