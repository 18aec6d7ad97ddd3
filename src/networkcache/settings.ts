// The node's network-cache settings (networkcache.md §2), read once from the
// configuration: [networkcache] wins over [slapos] for the keys both may hold.
// Lists are URL prefixes. Pure, apart from nothing: files are read by callers.
import type { SlaposConfig } from '../config/load.js';

export interface CacheSettings {
  downloadCacheUrl?: string | undefined;
  downloadDirUrl?: string | undefined;
  uploadCacheUrl?: string | undefined;
  uploadDirUrl?: string | undefined;
  /** buildout's own uploads (passed to the software buildout). */
  uploadEggCacheUrl?: string | undefined;
  uploadEggDirUrl?: string | undefined;
  /** The regular cache (eggs, URLs), used by `slapos cachelookup url|pypi`. */
  eggCacheUrl?: string | undefined;
  eggDirUrl?: string | undefined;
  signatureKeyFile?: string | undefined;
  /** Concatenated PEM certificates. */
  certificateList: string;
  downloadBlacklist: readonly string[];
  uploadBlacklist: readonly string[];
  forceList: readonly string[];
  tls: Partial<Record<'shacache-ca-file' | 'shacache-cert-file' | 'shacache-key-file' | 'shadir-ca-file' | 'shadir-cert-file' | 'shadir-key-file', string>>;
  limits: ExtractLimits;
}

export interface ExtractLimits {
  /** Bytes of regular-file content a release may unpack to. */
  maxBytes: number;
  /** Members (files, directories, links) a release may have. */
  maxMembers: number;
}

export const DEFAULT_LIMITS: ExtractLimits = { maxBytes: 32 * 1024 ** 3, maxMembers: 2_000_000 };

const TLS_KEYS = ['shacache-ca-file', 'shacache-cert-file', 'shacache-key-file', 'shadir-ca-file', 'shadir-cert-file', 'shadir-key-file'] as const;

const nonEmpty = (value: string | undefined): string | undefined => (value === undefined || value.trim() === '' ? undefined : value.trim());

export function cacheSettings(config: Pick<SlaposConfig, 'slapos' | 'networkcache'>): CacheSettings {
  const nc = config.networkcache;
  const tls: CacheSettings['tls'] = {};
  for (const key of TLS_KEYS) {
    const value = nonEmpty(nc[key]);
    if (value !== undefined) tls[key] = value;
  }
  const certificates = nc['signature-certificate-list'].length > 0 ? nc['signature-certificate-list'] : config.slapos.signature_certificate_list;
  return {
    downloadCacheUrl: nonEmpty(nc['download-binary-cache-url']),
    downloadDirUrl: nonEmpty(nc['download-binary-dir-url']),
    uploadCacheUrl: nonEmpty(nc['upload-binary-cache-url']),
    uploadDirUrl: nonEmpty(nc['upload-binary-dir-url']),
    uploadEggCacheUrl: nonEmpty(nc['upload-cache-url']),
    uploadEggDirUrl: nonEmpty(nc['upload-dir-url']),
    eggCacheUrl: nonEmpty(nc['download-cache-url']),
    eggDirUrl: nonEmpty(nc['download-dir-url']),
    signatureKeyFile: nonEmpty(nc['signature-private-key-file']) ?? nonEmpty(config.slapos.signature_private_key_file),
    certificateList: certificates.join('\n'),
    downloadBlacklist: nc['download-from-binary-cache-url-blacklist'],
    uploadBlacklist: nc['upload-to-binary-cache-url-blacklist'],
    forceList: nc['download-from-binary-cache-force-url-list'],
    tls,
    limits: {
      maxBytes: nc['binary-cache-max-bytes'] ?? DEFAULT_LIMITS.maxBytes,
      maxMembers: nc['binary-cache-max-members'] ?? DEFAULT_LIMITS.maxMembers,
    },
  };
}

/** The first prefix of `list` the URL starts with (the reference's matching). */
export const matchPrefix = (url: string, list: readonly string[]): string | undefined => list.find((prefix) => url.startsWith(prefix));

/** Files named by the settings that must exist (the reference's startup check, "File %r does not exist."). */
export function configuredFiles(settings: CacheSettings): string[] {
  return [settings.signatureKeyFile, ...Object.values(settings.tls)].filter((f): f is string => f !== undefined);
}

/**
 * The `networkcache:` assignments given to the software buildout (networkcache.md §6),
 * appended to its command line. Download URLs and certificates are not passed: the
 * release's own [networkcache] section supplies them, as under the reference.
 */
export function buildoutCacheArgs(settings: CacheSettings): string[] {
  const options: [string, string | undefined][] = [
    ['signature-private-key-file', settings.signatureKeyFile],
    ['upload-cache-url', settings.uploadEggCacheUrl],
    ['upload-dir-url', settings.uploadEggDirUrl],
    ...TLS_KEYS.map((key): [string, string | undefined] => [key, settings.tls[key]]),
  ];
  const set = options.filter((o): o is [string, string] => o[1] !== undefined);
  if (settings.signatureKeyFile === undefined && settings.uploadEggCacheUrl === undefined && settings.uploadEggDirUrl === undefined) {
    return set.map(([key, value]) => `networkcache:${key}=${value}`);
  }
  return ['buildout:networkcache-section=networkcache', ...set.map(([key, value]) => `networkcache:${key}=${value}`)];
}

/** The cache URL of one object: the base without trailing slashes, "/", the name (libnetworkcache). */
export const joinUrl = (base: string, name: string): string => `${base.replace(/\/+$/, '')}/${name}`;
