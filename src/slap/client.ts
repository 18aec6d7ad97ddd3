// Typed SLAP HTTP client (undici), speaking the legacy API exactly as
// slapos.core's slap library: GET query / POST form, "None" for absent
// values, marshalled fields. Errors carry the endpoint and HTTP status.
import { readFileSync } from 'node:fs';
import { Agent, request, type Dispatcher } from '../vendor/undici.js';
import { masterEndpoint } from './master-url.js';
import { dumps } from './marshal-encode.js';
import { loads } from './marshal-decode.js';
import { isRecord, PyTuple, type PyRecord, type PyValue } from './pyvalue.js';
import {
  readComputer, readComputerPartition, readSoftwareInstance,
  type Computer, type ComputerPartition, type SoftwareInstance,
} from './shapes.js';
import {
  MasterUnreachableError, SlapHttpError, SlapNotFoundError, SlapNotReadyError, SlapProtocolError,
} from './errors.js';

export interface SlapClientOptions {
  /** Per-request timeout in ms (the reference's default is 60 s). */
  timeoutMs?: number;
  /** Client certificate and key (PEM) for a TLS master. */
  tls?: { key?: string | Buffer; cert?: string | Buffer; ca?: string | Buffer };
  userAgent?: string;
}

export interface RequestOptions {
  softwareType?: string;
  parameters?: PyRecord;
  filter?: PyRecord;
  state?: 'started' | 'stopped' | 'destroyed' | null;
  shared?: boolean;
  /** Request as this partition (instances requesting instances). */
  requester?: { computerId: string; partitionId: string };
}

type Args = Record<string, string | null | undefined>;

export interface TlsFiles {
  key_file?: string | undefined;
  cert_file?: string | undefined;
  master_ca_file?: string | undefined;
}

/**
 * The client certificate, key and CA named in a [slapos] section (key_file,
 * cert_file, master_ca_file), read now so a missing file is reported before
 * any request.
 */
export function tlsFromFiles(files: TlsFiles): SlapClientOptions['tls'] {
  const read = (kind: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new Error(`cannot read ${kind} ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  };
  if (Boolean(files.key_file) !== Boolean(files.cert_file)) throw new Error('key_file and cert_file must be given together');
  const tls: NonNullable<SlapClientOptions['tls']> = {};
  if (files.key_file && files.cert_file) {
    tls.key = read('key_file', files.key_file);
    tls.cert = read('cert_file', files.cert_file);
  }
  if (files.master_ca_file) tls.ca = read('master_ca_file', files.master_ca_file);
  return Object.keys(tls).length > 0 ? tls : undefined;
}

export class SlapClient {
  readonly masterUrl: string;
  private readonly dispatcher: Dispatcher;
  private readonly timeoutMs: number;
  private readonly userAgent: string;

  /** Where requests go: masterUrl itself, or http://localhost/… through the master's unix socket (master-url.ts). */
  private readonly base: string;

  constructor(masterUrl: string, options: SlapClientOptions = {}) {
    this.masterUrl = masterUrl.endsWith('/') ? masterUrl : `${masterUrl}/`;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.userAgent = options.userAgent ?? 'slapos-node (slapos.core/1.24.0 compatible)';
    const endpoint = masterEndpoint(masterUrl);
    this.base = endpoint.base;
    const connect = { ...(options.tls ?? {}), ...(endpoint.socketPath ? { socketPath: endpoint.socketPath } : {}) };
    this.dispatcher = new Agent({ connect, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** One call: returns the body text of a 2xx answer, or throws a typed error. */
  async call(method: 'GET' | 'POST', endpoint: string, args: Args): Promise<string> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(args)) if (v !== undefined) params.append(k, v === null ? 'None' : v);
    const query = method === 'GET' && [...params].length > 0 ? `?${params.toString()}` : '';
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.base}${endpoint}${query}`, {
        method,
        dispatcher: this.dispatcher,
        headers: {
          accept: '*/*',
          'user-agent': this.userAgent,
          ...(method === 'POST' ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        },
        ...(method === 'POST' ? { body: params.toString() } : {}),
      });
    } catch (error) {
      throw new MasterUnreachableError(endpoint, this.masterUrl, error);
    }
    const body = await res.body.text();
    if (res.statusCode >= 200 && res.statusCode < 300) return body;
    const short = body.startsWith('<!doctype html>') ? '' : body;
    if (res.statusCode === 404) throw new SlapNotFoundError(endpoint, 404, short);
    if (res.statusCode === 408) throw new SlapNotReadyError(endpoint, 408, short);
    throw new SlapHttpError(endpoint, res.statusCode, short);
  }

  /** A JSON-RPC v0 method (POST /<method>, JSON in and out); errors carry the master's {title}. */
  async jsonRpc(method: string, body: Record<string, unknown> = {}): Promise<unknown> {
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.base}${method}`, {
        method: 'POST', dispatcher: this.dispatcher, body: JSON.stringify(body),
        headers: { accept: 'application/json', 'content-type': 'application/json', 'user-agent': this.userAgent },
      });
    } catch (error) {
      throw new MasterUnreachableError(method, this.masterUrl, error);
    }
    const text = await res.body.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new SlapProtocolError(method, `answer (HTTP ${res.statusCode}) is not JSON`);
    }
    if (res.statusCode >= 200 && res.statusCode < 300) return parsed;
    const title = isJsonRecord(parsed) && typeof parsed.title === 'string' ? parsed.title : text;
    if (res.statusCode === 404) throw new SlapNotFoundError(method, 404, title);
    throw new SlapHttpError(method, res.statusCode, title);
  }

  private async marshalled(method: 'GET' | 'POST', endpoint: string, args: Args): Promise<PyValue> {
    const body = await this.call(method, endpoint, args);
    try {
      return loads(body);
    } catch (error) {
      throw new SlapProtocolError(endpoint, `answer is not a marshalled document: ${(error as Error).message}`);
    }
  }

  // ---- node side ----

  async getFullComputerInformation(computerId: string): Promise<Computer> {
    return readComputer(await this.marshalled('GET', 'getFullComputerInformation', { computer_id: computerId }));
  }
  async loadComputerConfigurationFromXML(computer: PyRecord): Promise<void> {
    await this.call('POST', 'loadComputerConfigurationFromXML', { xml: dumps(computer) });
  }
  async buildingSoftwareRelease(url: string, computerId: string): Promise<void> {
    await this.call('POST', 'buildingSoftwareRelease', { url, computer_id: computerId });
  }
  async availableSoftwareRelease(url: string, computerId: string): Promise<void> {
    await this.call('POST', 'availableSoftwareRelease', { url, computer_id: computerId });
  }
  async softwareReleaseError(url: string, computerId: string, errorLog: string): Promise<void> {
    await this.call('POST', 'softwareReleaseError', { url, computer_id: computerId, error_log: errorLog });
  }
  async destroyedSoftwareRelease(url: string, computerId: string): Promise<void> {
    await this.call('POST', 'destroyedSoftwareRelease', { url, computer_id: computerId });
  }
  async startedComputerPartition(computerId: string, partitionId: string): Promise<void> {
    await this.call('POST', 'startedComputerPartition', { computer_id: computerId, computer_partition_id: partitionId });
  }
  async stoppedComputerPartition(computerId: string, partitionId: string): Promise<void> {
    await this.call('POST', 'stoppedComputerPartition', { computer_id: computerId, computer_partition_id: partitionId });
  }
  /** Returns the master's answer: "OK", or why the partition is not freed yet. */
  async destroyedComputerPartition(computerId: string, partitionId: string): Promise<string> {
    return this.call('POST', 'destroyedComputerPartition', { computer_id: computerId, computer_partition_id: partitionId });
  }
  async softwareInstanceError(computerId: string, partitionId: string, errorLog: string, slaveReference?: string): Promise<void> {
    await this.call('POST', 'softwareInstanceError', {
      computer_id: computerId, computer_partition_id: partitionId, error_log: errorLog, slave_reference: slaveReference,
    });
  }
  async softwareInstanceBang(computerId: string, partitionId: string, message: string): Promise<void> {
    await this.call('POST', 'softwareInstanceBang', { computer_id: computerId, computer_partition_id: partitionId, message });
  }
  async computerBang(computerId: string, message: string): Promise<void> {
    await this.call('POST', 'computerBang', { computer_id: computerId, message });
  }
  async getComputerPartitionCertificate(computerId: string, partitionId: string): Promise<{ certificate: string; key: string }> {
    const v = await this.marshalled('GET', 'getComputerPartitionCertificate', { computer_id: computerId, computer_partition_id: partitionId });
    if (!isRecord(v)) throw new SlapProtocolError('getComputerPartitionCertificate', 'expected a dictionary');
    return { certificate: typeof v.certificate === 'string' ? v.certificate : '', key: typeof v.key === 'string' ? v.key : '' };
  }
  /** reportId: ours, so that our master stores a report sent twice once (a slapos.core master ignores the field). */
  async useComputer(computerId: string, useString: string, reportId?: string): Promise<void> {
    await this.call('POST', 'useComputer', { computer_id: computerId, use_string: useString, report_id: reportId });
  }
  async getHostingSubscriptionIpList(computerId: string, partitionId: string): Promise<Array<[string, string]>> {
    const v = await this.marshalled('GET', 'getHostingSubscriptionIpList', { computer_id: computerId, computer_partition_id: partitionId });
    if (!Array.isArray(v)) throw new SlapProtocolError('getHostingSubscriptionIpList', 'expected a list');
    return v.flatMap((x) => (x instanceof PyTuple ? [[String(x.items[0]), String(x.items[1])] as [string, string]] : []));
  }

  // ---- partition (buildout recipes) and client side ----

  async registerComputerPartition(computerId: string, partitionId: string): Promise<ComputerPartition> {
    return readComputerPartition(await this.marshalled('GET', 'registerComputerPartition', {
      computer_reference: computerId, computer_partition_reference: partitionId,
    }));
  }
  async setComputerPartitionConnectionXml(computerId: string, partitionId: string, connection: PyRecord, slaveReference?: string): Promise<void> {
    await this.call('POST', 'setComputerPartitionConnectionXml', {
      computer_id: computerId, computer_partition_id: partitionId, connection_xml: dumps(connection), slave_reference: slaveReference ?? null,
    });
  }
  /** The titles the partition's buildout requested (the node, after a successful run; slapgrid.md §4.8). */
  async updateComputerPartitionRelatedInstanceList(computerId: string, partitionId: string, titles: string[]): Promise<void> {
    await this.call('POST', 'updateComputerPartitionRelatedInstanceList', {
      computer_id: computerId, computer_partition_id: partitionId, instance_reference_xml: dumps(titles),
    });
  }
  async softwareInstanceRename(computerId: string, partitionId: string, newName: string): Promise<void> {
    await this.call('POST', 'softwareInstanceRename', { computer_id: computerId, computer_partition_id: partitionId, new_name: newName });
  }
  /** requestComputerPartition; a 408 (not ready) is thrown as SlapNotReadyError. */
  async requestComputerPartition(softwareRelease: string, title: string, options: RequestOptions = {}): Promise<SoftwareInstance> {
    return readSoftwareInstance(await this.marshalled('POST', 'requestComputerPartition', {
      software_release: softwareRelease,
      software_type: options.softwareType ?? 'default',
      partition_reference: title,
      partition_parameter_xml: dumps(options.parameters ?? {}),
      filter_xml: dumps(options.filter ?? {}),
      state: dumps(options.state ?? null),
      shared_xml: dumps(options.shared ?? false),
      computer_id: options.requester?.computerId,
      computer_partition_id: options.requester?.partitionId,
    }));
  }
  /** The releases of a software product ([slapproxy] software_product_list on our master). */
  async getSoftwareReleaseListFromSoftwareProduct(productReference: string): Promise<string[]> {
    const v = await this.marshalled('GET', 'getSoftwareReleaseListFromSoftwareProduct', { software_product_reference: productReference });
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new SlapProtocolError('getSoftwareReleaseListFromSoftwareProduct', 'expected a list of URLs');
    return v as string[];
  }
  /** supplySupply: state "available" installs, "destroyed" removes. Returns the master's sentence. */
  async supplySupply(url: string, computerId: string, state: 'available' | 'destroyed' = 'available'): Promise<string> {
    return this.call('POST', 'supplySupply', { url, computer_id: computerId, state });
  }
}

const isJsonRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
