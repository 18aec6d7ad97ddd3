// Which shadir entry a node may download (networkcache.md §4.2), pure: only
// entries whose signature verifies, in server order, the first whose
// multiarch and OS match this machine. Debian compares only the major
// version and ignores the codename; raspbian counts as debian.
export interface MachineInfo {
  /** `gcc -dumpmachine`, e.g. x86_64-linux-gnu. */
  multiarch: string;
  /** [distro id, version, codename], e.g. ["debian", "12", "bookworm"]. */
  os: [string, string, string];
}

/** The metadata the reference writes for a release (key order matters: it is what gets signed). */
export interface ReleaseMetadata {
  sha512: string;
  software_url: string;
  software_root: string;
  multiarch: string;
  os: [string, string, string];
}

export interface RawEntry {
  metadata: string;
  signature: string;
}

export type Verdict = { entry: RawEntry; sha512: string; trusted: boolean; compatible: boolean; metadata?: Record<string, unknown>; problem?: string };

function normaliseOs(os: readonly unknown[]): string[] {
  const [rawName, version, codename] = os.map((v) => String(v ?? ''));
  let name = (rawName ?? '').toLowerCase();
  if (name === 'raspbian') name = 'debian';
  if (name === 'debian') return [name, (version ?? '').split('.')[0] ?? '', ''];
  return [name, version ?? '', codename ?? ''];
}

/** A Python tuple literal such as "('debian', '12', 'bookworm')" (old entries' os). */
function parseTupleLiteral(text: string): string[] {
  return [...text.matchAll(/'([^']*)'|"([^"]*)"/g)].map((m) => m[1] ?? m[2] ?? '');
}

export function isCompatible(metadata: Record<string, unknown>, machine: MachineInfo): boolean {
  let multiarch = metadata.multiarch;
  let os = metadata.os;
  // Old entries: machine instead of multiarch, os as a tuple literal.
  if (multiarch === undefined && metadata.machine === 'x86_64') {
    multiarch = 'x86_64-linux-gnu';
    if (typeof os === 'string') os = parseTupleLiteral(os);
  }
  if (multiarch !== machine.multiarch || !Array.isArray(os)) return false;
  const a = normaliseOs(os);
  const b = normaliseOs(machine.os);
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

/** Every entry judged (for `slapos cachelookup`), in server order. */
export function judgeEntries(entries: readonly RawEntry[], verify: (entry: RawEntry) => boolean, machine: MachineInfo): Verdict[] {
  return entries.map((entry) => {
    const trusted = verify(entry);
    let metadata: unknown;
    try {
      metadata = JSON.parse(entry.metadata);
    } catch {
      return { entry, sha512: '', trusted, compatible: false, problem: 'metadata is not JSON' };
    }
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      return { entry, sha512: '', trusted, compatible: false, problem: 'metadata is not a JSON object' };
    }
    const record = metadata as Record<string, unknown>;
    const sha512 = typeof record.sha512 === 'string' && /^[0-9a-f]{128}$/.test(record.sha512) ? record.sha512 : '';
    return { entry, sha512, trusted, compatible: sha512 !== '' && isCompatible(record, machine), metadata: record, ...(sha512 === '' ? { problem: 'no valid sha512' } : {}) };
  });
}

/** The candidates a node tries, in order: trusted and compatible. */
export function candidates(entries: readonly RawEntry[], verify: (entry: RawEntry) => boolean, machine: MachineInfo): Verdict[] {
  return judgeEntries(entries, verify, machine).filter((v) => v.trusted && v.compatible);
}

/** The metadata string exactly as Python's json.dumps writes it (", " and ": ", non-ASCII escaped), in the reference's key order. */
export function metadataString(metadata: ReleaseMetadata): string {
  const py = (value: unknown): string => {
    if (Array.isArray(value)) return `[${value.map(py).join(', ')}]`;
    return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  };
  const keys: (keyof ReleaseMetadata)[] = ['sha512', 'software_url', 'software_root', 'multiarch', 'os'];
  return `{${keys.map((key) => `"${key}": ${py(metadata[key])}`).join(', ')}}`;
}
