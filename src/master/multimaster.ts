// Multimaster forwarding ([multimaster/<url>] sections, slap-protocol.md §6.9,
// recorded in test/fixtures/slap-traffic/12-multimaster*.jsonl): a request
// that names another master (filter master_url) or asks for a release listed
// in a section is sent to that master, with the section's identity, and its
// answer handed back; a master URL that is not configured is refused. A
// forwarding failure is an error for the client, never a local allocation.
import { readFileSync } from 'node:fs';
import { dumps } from '../slap/marshal-encode.js';
import { loads } from '../slap/marshal-decode.js';
import { PyObject, type PyRecord, type PyValue } from '../slap/pyvalue.js';
import { SlapClient, type SlapClientOptions } from '../slap/client.js';
import { MasterUnreachableError, SlapHttpError } from '../slap/errors.js';
import type { InstanceRequest } from './instance-ops.js';

export interface MultimasterEntry {
  /** The section name after "multimaster/": compared with master_url as an exact string. */
  url: string;
  /** PEM files of the identity used on that master (required for https). */
  key?: string | undefined;
  cert?: string | undefined;
  /** ours: CA file that signs that master's server certificate (else the system's CAs). */
  masterCaFile?: string | undefined;
  /** Request as this partition of that master instead of as a user. */
  computer?: string | undefined;
  partition?: string | undefined;
  /** Releases whose requests are forwarded without master_url. */
  softwareReleases: string[];
}

/** The keys of a [multimaster/<url>] section (for configuration warnings too). */
export const MULTIMASTER_KEYS: ReadonlySet<string> = new Set(['key', 'cert', 'master_ca_file', 'computer', 'partition', 'software_release_list']);
export const SECTION_PREFIX = 'multimaster/';

/** "[multimaster/<url>] key" of keys we do not know (warned about, not fatal: [DEFAULT] keys land in every section). */
export function unknownMultimasterKeys(raw: ReadonlyMap<string, ReadonlyMap<string, string>>): string[] {
  const out: string[] = [];
  for (const [name, values] of raw) {
    if (!name.startsWith(SECTION_PREFIX)) continue;
    for (const key of values.keys()) if (!MULTIMASTER_KEYS.has(key)) out.push(`[${name}] ${key}`);
  }
  return out;
}

/** Every [multimaster/<url>] section of a configuration, checked. Throws with the section named. */
export function parseMultimasterSections(raw: ReadonlyMap<string, ReadonlyMap<string, string>>): MultimasterEntry[] {
  const out: MultimasterEntry[] = [];
  for (const [name, values] of raw) {
    if (!name.startsWith(SECTION_PREFIX)) continue;
    const url = name.slice(SECTION_PREFIX.length);
    const where = `[${name}]`;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error(`${where}: "${url}" is not a master URL (http:// or https://)`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`${where}: the master URL must be http:// or https://`);
    const list = values.get('software_release_list');
    if (list === undefined) throw new Error(`${where}: software_release_list is required (it may be empty)`);
    const entry: MultimasterEntry = {
      url, key: values.get('key') || undefined, cert: values.get('cert') || undefined, masterCaFile: values.get('master_ca_file') || undefined,
      computer: values.get('computer') || undefined, partition: values.get('partition') || undefined,
      softwareReleases: list.split('\n').map((l) => l.trim()).filter((l) => l !== ''),
    };
    if (Boolean(entry.key) !== Boolean(entry.cert)) throw new Error(`${where}: key and cert must be given together`);
    if (parsed.protocol === 'https:' && !entry.key) throw new Error(`${where}: an https master needs key and cert`);
    if (parsed.protocol === 'http:' && entry.key) throw new Error(`${where}: key and cert are only used with an https master`);
    if (Boolean(entry.computer) !== Boolean(entry.partition)) throw new Error(`${where}: computer and partition must be given together`);
    out.push(entry);
  }
  return out;
}

export type Decision =
  | { kind: 'local' }
  | { kind: 'forward'; entry: MultimasterEntry }
  | { kind: 'refuse'; message: string };

/**
 * Where a request goes, given whether it is already allocated here and a
 * self-check (both asked only when the request names a master or a listed release).
 * Without any section, a request naming another master is refused too.
 */
export async function decide(
  entries: readonly MultimasterEntry[], req: Pick<InstanceRequest, 'filter' | 'softwareRelease'>,
  allocatedHere: () => Promise<boolean>, isSelf: (url: string) => Promise<boolean>,
): Promise<Decision> {
  const masterUrl = req.filter.master_url;
  const named = typeof masterUrl === 'string' && masterUrl !== '';
  if (!named && !entries.some((e) => e.softwareReleases.includes(req.softwareRelease))) return { kind: 'local' };
  if (await allocatedHere()) return { kind: 'local' };
  if (typeof masterUrl === 'string' && named) {
    if (await isSelf(masterUrl)) return { kind: 'local' };
    const entry = entries.find((e) => e.url === masterUrl);
    if (!entry) return { kind: 'refuse', message: `External SlapOS Master URL ${masterUrl} is not listed in multimaster list.` };
    return { kind: 'forward', entry };
  }
  const listed = entries.find((e) => e.softwareReleases.includes(req.softwareRelease));
  return listed ? { kind: 'forward', entry: listed } : { kind: 'local' };
}

/** The form the reference sends to the other master (12-multimaster-b.jsonl). */
export function forwardedForm(entry: MultimasterEntry, req: InstanceRequest): Record<string, string> {
  const title = `${req.requester?.partition ?? 'user'}_${req.title}`;
  const filter: PyRecord = { ...req.filter };
  const form: Record<string, string> = {
    software_release: req.softwareRelease,
    partition_reference: title,
    partition_parameter_xml: dumps(req.parameters),
    filter_xml: '',
    software_type: req.softwareType,
    state: dumps(req.state),
    shared_xml: dumps(req.shared),
  };
  if (entry.computer && entry.partition) {
    form.computer_id = entry.computer;
    form.computer_partition_id = entry.partition;
  } else {
    filter.source_instance_id = title;
  }
  form.filter_xml = dumps(filter);
  return form;
}

/** The other master's SoftwareInstance as the reference hands it back: a ComputerPartition of that master. */
export function forwardedReply(entry: MultimasterEntry, req: InstanceRequest, answer: PyValue): PyObject {
  if (!(answer instanceof PyObject)) throw new ForwardError(502, `master ${entry.url} answered something that is not an instance`);
  const state = answer.state;
  const computer = typeof state.slap_computer_id === 'string' ? state.slap_computer_id : null;
  const partition = typeof state.slap_computer_partition_id === 'string' ? state.slap_computer_partition_id : null;
  return new PyObject('slapos.slap.slap', 'ComputerPartition', [computer, partition, null], {
    ...state,
    _computer_id: computer,
    _connection_helper: null,
    _hateoas_navigator: null,
    _master_url: entry.url,
    _partition_id: partition,
    _request_dict: null,
    _software_release_document: typeof state.slap_software_release_url === 'string' ? state.slap_software_release_url : req.softwareRelease,
  });
}

/** A forwarding failure: the status the client gets (404/408 passed on, 502 otherwise). */
export class ForwardError extends Error {
  override name = 'ForwardError';
  constructor(readonly status: 404 | 408 | 502, message: string) {
    super(message);
  }
}

/** Talks to the configured masters (one client per section, with its identity). */
export class Forwarder {
  private readonly clients = new Map<string, SlapClient>();

  constructor(
    readonly entries: readonly MultimasterEntry[],
    private readonly runId: string,
    private readonly timeoutMs = 60_000,
  ) {}

  private client(url: string): SlapClient {
    let client = this.clients.get(url);
    if (!client) {
      const entry = this.entries.find((e) => e.url === url);
      const options: SlapClientOptions = { timeoutMs: this.timeoutMs };
      if (entry?.key && entry.cert) options.tls = { key: readFileSync(entry.key), cert: readFileSync(entry.cert) };
      if (entry?.masterCaFile) options.tls = { ...options.tls, ca: readFileSync(entry.masterCaFile) };
      client = new SlapClient(url, options);
      this.clients.set(url, client);
    }
    return client;
  }

  /** Whether `url` reaches this very process (its /getRunId is ours). Unreachable: not us. */
  async isSelf(url: string): Promise<boolean> {
    let probe: SlapClient | undefined;
    try {
      new URL(url);
      const known = this.entries.some((e) => e.url === url);
      probe = known ? this.client(url) : new SlapClient(url, { timeoutMs: 5_000 });
      return (await probe.call('GET', 'getRunId', {})).trim() === this.runId;
    } catch {
      return false;
    } finally {
      if (probe && !this.entries.some((e) => e.url === url)) await probe.close();
    }
  }

  /**
   * `reachedAs`: the URL the client used to reach us (scheme + Host header):
   * equal to master_url, that is us without a probe (the reference meant to
   * check this but compares "http://<Host>:<port>/"). Else GET <url>/getRunId.
   */
  decide(req: InstanceRequest, allocatedHere: () => Promise<boolean>, reachedAs?: string): Promise<Decision> {
    return decide(this.entries, req, allocatedHere, async (url) => url === reachedAs || this.isSelf(url));
  }

  async forward(entry: MultimasterEntry, req: InstanceRequest): Promise<PyObject> {
    let body: string;
    try {
      body = await this.client(entry.url).call('POST', 'requestComputerPartition', forwardedForm(entry, req));
    } catch (error) {
      if (error instanceof SlapHttpError && (error.status === 404 || error.status === 408)) {
        throw new ForwardError(error.status, `master ${entry.url} answered ${error.status}${error.body ? `: ${error.body.slice(0, 200)}` : ''}`);
      }
      if (error instanceof SlapHttpError || error instanceof MasterUnreachableError) {
        throw new ForwardError(502, `forwarding to master ${entry.url} failed: ${error.message}`);
      }
      throw new ForwardError(502, `forwarding to master ${entry.url} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    let answer: PyValue;
    try {
      answer = loads(body);
    } catch (error) {
      throw new ForwardError(502, `master ${entry.url} answered a document we cannot read: ${(error as Error).message}`);
    }
    return forwardedReply(entry, req, answer);
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
  }
}
