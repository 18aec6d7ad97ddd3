// Uploading a freshly built release to the binary cache (networkcache.md §5):
// the tarball (one top-level "<hash>/", links kept as links) is made by GNU
// tar AS THE SOFTWARE USER through the executor, inside software_root; root
// then opens it without following links (safe-fs), copies it to a private
// file while hashing it, signs the reference's metadata with the node's key,
// and sends blob then entry. Up to three tries.
import { closeSync, constants, createReadStream, fstatSync, mkdtempSync, readdirSync, rmSync, readFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runAs } from '../executor/index.js';
import { openBeneath, statBeneath, unlinkBeneath } from '../safe-fs/index.js';
import type { Logger } from '../util/log.js';
import { blobExists, putEntry, uploadBlob } from './client.js';
import type { CacheJob, CacheUser } from './download.js';
import { machineInfo } from './machine.js';
import { metadataString, type MachineInfo } from './select.js';
import { EXTRACTED_MARKER } from './member-policy.js';
import { matchPrefix, type CacheSettings } from './settings.js';
import { keyMatchesList, parseCertificateList, signMetadata } from './signature.js';

export interface UploadRequest extends CacheJob {
  /** Between failed tries (the reference sleeps 1800 s); default 30 s. */
  retryDelayMs?: number;
}

export type UploadOutcome = { uploaded: true; sha512: string; bytes: number; seconds: number } | { uploaded: false; reason: string };

/** Why this build is not uploaded, or undefined when it is (pure but for the `.shared` check the caller passes). */
export function uploadSkipReason(settings: CacheSettings, url: string, shared: boolean): string | undefined {
  if (!settings.uploadCacheUrl || !settings.uploadDirUrl) return 'upload not configured (upload-binary-cache-url, upload-binary-dir-url)';
  if (!settings.signatureKeyFile) return 'no signature-private-key-file';
  if (matchPrefix(url, settings.uploadBlacklist) !== undefined) return 'Software Release URL is blacklisted (upload-to-binary-cache-url-blacklist)';
  if (shared) return 'the release uses shared parts (.shared): not uploaded';
  return undefined;
}

async function copyHashing(fd: number, to: string): Promise<{ sha512: string; bytes: number }> {
  const hash = createHash('sha512');
  const out = await open(to, 'wx', 0o600);
  let bytes = 0;
  try {
    for await (const chunk of createReadStream('', { fd, autoClose: false }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      await out.write(chunk);
    }
    await out.sync();
  } finally {
    await out.close();
  }
  return { sha512: hash.digest('hex'), bytes };
}

export async function uploadRelease(request: UploadRequest): Promise<UploadOutcome> {
  const started = process.hrtime.bigint();
  const { settings, log } = request;
  let shared = false;
  try {
    shared = statBeneath(request.softwareRoot, path.join(request.hash, '.shared')) !== undefined;
  } catch {
    shared = true; // something odd in the way: do not publish it
  }
  const skip = uploadSkipReason(settings, request.url, shared);
  if (skip) return { uploaded: false, reason: skip };
  const key = readFileSync(settings.signatureKeyFile as string);
  const trusted = parseCertificateList(settings.certificateList);
  if (!keyMatchesList(key, trusted)) {
    return { uploaded: false, reason: `Invalid configuration: no matching certificate for private key ${settings.signatureKeyFile} in signature-certificate-list` };
  }
  log.info('creating archive of software release');
  // Archives of an upload killed earlier (names only: removed as names, never followed).
  for (const entry of readdirSync(request.softwareRoot)) {
    if (entry.startsWith(`.${request.hash}.upload-`)) {
      try {
        unlinkBeneath(request.softwareRoot, entry);
      } catch {
        // a directory or gone: left alone
      }
    }
  }
  const name = `.${request.hash}.upload-${randomBytes(6).toString('hex')}.tar.gz`;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'slapos-upload-'));
  try {
    const tar = await runAs({
      argv: ['tar', '--create', '--gzip', `--file=${path.join(request.softwareRoot, name)}`, `--directory=${request.softwareRoot}`, `--exclude=${request.hash}/.completed`, `--exclude=${request.hash}/${EXTRACTED_MARKER}`, '--', request.hash],
      user: request.user ? { ...request.user, home: request.softwareRoot } : undefined,
      env: {},
      cwd: request.softwareRoot,
      timeoutMs: 3600_000,
      maxOutput: 16 * 1024,
    });
    let archive: { sha512: string; bytes: number };
    try {
      if (tar.exitCode !== 0) return { uploaded: false, reason: `tar failed: ${(tar.spawnError ?? tar.output.trim()) || `exit ${tar.exitCode ?? tar.signal}`}` };
      const fd = openBeneath(request.softwareRoot, name, constants.O_RDONLY | constants.O_NONBLOCK);
      try {
        if (!fstatSync(fd).isFile()) return { uploaded: false, reason: `${name} is not a regular file` };
        archive = await copyHashing(fd, path.join(tmp, 'release.tar.gz'));
      } finally {
        closeSync(fd);
      }
    } finally {
      try {
        unlinkBeneath(request.softwareRoot, name);
      } catch {
        // gone or replaced: nothing of ours
      }
    }
    const machine = request.machine ?? machineInfo();
    const metadata = metadataString({
      sha512: archive.sha512, software_url: request.url, software_root: request.softwareRoot, multiarch: machine.multiarch, os: machine.os,
    });
    const entry = { metadata, signature: signMetadata(metadata, key) };
    const cacheTls = { ca: settings.tls['shacache-ca-file'], cert: settings.tls['shacache-cert-file'], key: settings.tls['shacache-key-file'] };
    const dirTls = { ca: settings.tls['shadir-ca-file'], cert: settings.tls['shadir-cert-file'], key: settings.tls['shadir-key-file'] };
    let last = '';
    for (let attempt = 0; attempt < 3; attempt += 1) {
      log.info({ software_release: request.url, attempt: attempt + 1, of: 3 }, 'uploading the binary into the network cache');
      try {
        if (!(await blobExists(settings.uploadCacheUrl as string, archive.sha512, cacheTls))) {
          await uploadBlob(settings.uploadCacheUrl as string, path.join(tmp, 'release.tar.gz'), archive.bytes, archive.sha512, cacheTls);
        }
        await putEntry(settings.uploadDirUrl as string, request.hash, entry, dirTls);
        return { uploaded: true, sha512: archive.sha512, bytes: archive.bytes, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
      } catch (error) {
        last = (error as Error).message;
        log.warn({ code: 'CACHE_UPLOAD_FAILED', error: last }, 'failed to upload to the network cache');
        if (attempt < 2) await new Promise((resolve) => setTimeout(resolve, request.retryDelayMs ?? 30_000));
      }
    }
    return { uploaded: false, reason: last };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
