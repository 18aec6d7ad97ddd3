// `slapos cachelookup binary-sr|url|pypi` (networkcache.md §9): what the
// shadir holds under a key, every entry shown with whether its signature
// verifies against signature-certificate-list and, for releases, whether it
// suits this machine. Nothing is filtered, nothing downloaded.
import { createHash } from 'node:crypto';
import { listEntries } from './client.js';
import { machineInfo } from './machine.js';
import { judgeEntries, type MachineInfo } from './select.js';
import type { CacheSettings } from './settings.js';
import { parseCertificateList, verifyMetadata } from './signature.js';

export class LookupError extends Error {
  override name = 'LookupError';
}

export interface LookupRow {
  sha512: string;
  verified: boolean;
  compatible?: boolean;
  multiarch?: string;
  distribution?: string;
  version?: string;
  /** url / pypi entries: their own fields. */
  metadata: Record<string, unknown> | undefined;
}

export interface LookupResult {
  key: string;
  dirUrl: string;
  rows: LookupRow[];
}

const md5 = (text: string) => createHash('md5').update(text).digest('hex');

async function lookup(dirUrl: string | undefined, dirKey: string, key: string, settings: CacheSettings, machine: MachineInfo, missing: string): Promise<LookupResult> {
  if (!dirUrl) throw new LookupError(`[networkcache] ${dirKey} is not set`);
  const entries = await listEntries(dirUrl, key);
  if (!entries || entries.length === 0) throw new LookupError(missing);
  const trusted = parseCertificateList(settings.certificateList);
  const rows = judgeEntries(entries, (e) => verifyMetadata(e.metadata, e.signature, trusted), machine).map((v): LookupRow => {
    const os = Array.isArray(v.metadata?.os) ? (v.metadata?.os as unknown[]).map(String) : [];
    return {
      sha512: v.sha512, verified: v.trusted, compatible: v.compatible, metadata: v.metadata,
      ...(typeof v.metadata?.multiarch === 'string' ? { multiarch: v.metadata.multiarch } : {}),
      ...(os.length > 0 ? { distribution: os[0] ?? '', version: os[1] ?? '' } : {}),
    };
  });
  return { key, dirUrl, rows };
}

/** A release by URL or by its md5 (the software directory name). */
export function lookupBinarySr(settings: CacheSettings, urlOrMd5: string, machine: MachineInfo = machineInfo()): Promise<LookupResult> {
  const key = /^[0-9a-f]{32}$/.test(urlOrMd5) ? urlOrMd5 : md5(urlOrMd5);
  return lookup(settings.downloadDirUrl, 'download-binary-dir-url', key, settings, machine, 'Software release not found in binary cache');
}

export function lookupUrl(settings: CacheSettings, url: string, machine: MachineInfo = machineInfo()): Promise<LookupResult> {
  return lookup(settings.eggDirUrl, 'download-dir-url', `file-urlmd5:${md5(url)}`, settings, machine, `URL not found in cache: ${url}`);
}

export function lookupPypi(settings: CacheSettings, name: string, version: string, machine: MachineInfo = machineInfo()): Promise<LookupResult> {
  return lookup(settings.eggDirUrl, 'download-dir-url', `pypi:${name}=${version}`, settings, machine, `${name}==${version} not found in cache`);
}

/** A plain-text table, one line per entry. */
export function formatLookup(result: LookupResult, kind: 'binary-sr' | 'url' | 'pypi'): string {
  const header = kind === 'binary-sr'
    ? ['multiarch', 'distribution', 'version', 'id', 'compatible?', 'verified?']
    : ['url', 'sha512', 'verified?'];
  const lines = result.rows.map((r) => kind === 'binary-sr'
    ? [r.multiarch ?? '?', r.distribution ?? '?', r.version ?? '?', r.sha512 || '(invalid)', r.compatible ? 'yes' : 'no', r.verified ? 'yes' : 'no']
    : [String(r.metadata?.url ?? r.metadata?.software_url ?? ''), r.sha512 || '(invalid)', r.verified ? 'yes' : 'no']);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)));
  const row = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [`${result.dirUrl} key ${result.key}:`, row(header), ...lines.map(row)].join('\n');
}
