// Helpers of the network-cache tests: a signing key with its self-signed
// certificate (openssl), tarballs built member by member (tar-stream), and
// cache settings pointing at a test server.
import type { ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { DEFAULT_LIMITS, type CacheSettings } from '../../src/networkcache/settings.js';
import { createUser, tempDir, type TestUser } from '../helpers/system.js';

export interface Signer {
  keyFile: string;
  keyPem: string;
  certPem: string;
}

export function makeSigner(t: ExecutionContext, cn = 'test signer'): Signer {
  const dir = tempDir(t, 'slapos-cache-key-');
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${cn}`], { stdio: 'ignore' });
  return { keyFile, keyPem: readFileSync(keyFile, 'utf8'), certPem: readFileSync(certFile, 'utf8') };
}

export interface Member {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo' | 'character-device';
  content?: string;
  linkname?: string;
  mode?: number;
  /** Declared size (a lie, for bombs); default the content's length. */
  size?: number;
}

export async function tarball(members: readonly Member[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (chunk: unknown) => { chunks.push(chunk as Buffer); });
  const done = new Promise<void>((resolve, reject) => {
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const m of members) {
    const type = m.type ?? 'file';
    const header = { name: m.name, type, mode: m.mode ?? (type === 'directory' ? 0o755 : 0o644), ...(m.linkname !== undefined ? { linkname: m.linkname } : {}) };
    await new Promise<void>((resolve, reject) => {
      if (type === 'file') pack.entry({ ...header, size: Buffer.byteLength(m.content ?? '') }, m.content ?? '', (error) => (error ? reject(error) : resolve()));
      else pack.entry(header, (error) => (error ? reject(error) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

export function settingsFor(base: string, certificateList: string, overrides: Partial<CacheSettings> = {}): CacheSettings {
  return {
    downloadCacheUrl: `${base}/shacache`, downloadDirUrl: `${base}/shadir`,
    uploadCacheUrl: `${base}/shacache`, uploadDirUrl: `${base}/shadir`,
    certificateList, downloadBlacklist: [], uploadBlacklist: [], forceList: [], tls: {}, limits: DEFAULT_LIMITS,
    ...overrides,
  };
}

/** A node's software root, owned by a fresh test user (the software user), in a world-traversable temp directory. */
export interface CacheNode {
  dir: string;
  softwareRoot: string;
  user: TestUser;
}

export function cacheNode(t: ExecutionContext): CacheNode {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const user = createUser(t);
  const softwareRoot = path.join(dir, 'software');
  mkdirSync(softwareRoot);
  chownSync(softwareRoot, user.uid, user.gid);
  return { dir, softwareRoot, user };
}
