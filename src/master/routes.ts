// The legacy SLAP endpoints (slap-protocol.md §2–§3): parse the query/form
// exactly as the reference ("None" = absent, marshalled fields), validate,
// run one transaction, answer a word or a marshalled document.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { dumps } from '../slap/marshal-encode.js';
import { instanceXmlToDict } from '../slap/instance-xml.js';
import { loads as loadsAny } from '../slap/marshal-decode.js';
import { isRecord, PyTuple, type PyRecord, type PyValue } from '../slap/pyvalue.js';
import type { Rule } from './access.js';
import type { RequestedState } from './allocation.js';
import { acceptsGzip, AnswerCache, inflateAnswer } from './answer-cache.js';
import type { Authorize } from './authorize.js';
import { REQUEST_XML_LIMITS } from './limits.js';
import type { IssuedCertificate } from './certificates.js';
import * as inst from './instance-ops.js';
import type { Forwarder } from './multimaster.js';
import { ForwardError } from './multimaster.js';
import * as node from './node-ops.js';
import * as syncOps from './sqlite-sync.js';
import { SqliteStore } from './sqlite-store.js';
import { relatedTitles, updateRelated } from './related-ops.js';
import type { CertificateRow, Store, Tx } from './store.js';
import { badRequest, checkChoice, checkId, checkText, checkTitle, checkUrl, notFound } from './validate.js';

type Fields = Record<string, string | undefined>;

/** Marshalled request fields: decoded within the request budget (limits.ts), expanded references included. */
const loads = (xml: string) => loadsAny(xml, REQUEST_XML_LIMITS);

/** Query (GET) or form (POST) fields; repeated keys are refused, "None" means absent. */
function fields(request: FastifyRequest): Fields {
  const source = (request.method === 'GET' ? request.query : request.body) ?? {};
  if (typeof source !== 'object') throw badRequest('expected form fields');
  const out: Fields = {};
  for (const [key, value] of Object.entries(source as Record<string, unknown>)) {
    if (typeof value !== 'string') throw badRequest(`field ${key} given more than once`);
    out[key] = value === 'None' ? undefined : value;
  }
  return out;
}

function marshalledDict(kind: string, value: string | undefined): PyRecord {
  if (value === undefined || value === '') return {};
  const decoded = loads(value);
  if (!isRecord(decoded)) throw badRequest(`${kind} must be a marshalled dictionary with string keys`);
  return decoded;
}

function marshalledState(value: string | undefined): RequestedState | null {
  if (value === undefined || value === '') return null;
  const decoded = loads(value);
  if (decoded === null) return null;
  return checkChoice('state', typeof decoded === 'string' ? decoded : '', ['started', 'stopped', 'destroyed'] as const);
}

function marshalledBool(value: string | undefined): boolean {
  if (value === undefined || value === '') return false;
  const decoded = loads(value);
  if (typeof decoded !== 'boolean') throw badRequest('shared_xml must be a marshalled bool');
  return decoded;
}

const sendXml = (reply: FastifyReply, value: PyValue) => reply.type('text/xml; charset=utf-8').send(dumps(value));
const sendText = (reply: FastifyReply, text: string) => reply.type('text/plain; charset=utf-8').send(text);

/** Issues a partition's certificate (certificates.ts with the master's CA). */
export type PartitionIssuer = (computer: string, partition: string) => Promise<IssuedCertificate>;

export interface RouteDeps {
  authorize: Authorize;
  /** Absent when no CA key is configured: certificates are empty strings (as the proxy). */
  issuer?: PartitionIssuer | undefined;
  /** Called once per accepted usage report (metrics). */
  onUsage?: () => void;
  /** Memory for cached getFullComputerInformation answers (default 256 MiB). */
  answerCacheBytes?: number | undefined;
  /** [multimaster/…] sections: requests for other masters are forwarded (multimaster.ts). */
  forwarder?: Forwarder | undefined;
}

/** Flask's 404 page with the reference's own message (multimaster refusal). */
const flaskNotFound = (message: string) =>
  `<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>${message.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')}</p>\n`;

/** The partition's stored certificate, issued on first demand; the first of two racing masters wins. */
async function partitionCertificate(store: Store, issuer: PartitionIssuer, computer: string, partition: string): Promise<CertificateRow> {
  const existing = await store.read((t) => t.getCertificate(computer, partition));
  if (existing) return existing;
  const fresh = await issuer(computer, partition);
  return store.transaction(async (t) => {
    const raced = await t.getCertificate(computer, partition);
    if (raced) return raced;
    if ((await t.getPartition(computer, partition))?.slap_state !== 'busy') throw notFound(`partition ${partition} is not allocated`);
    const row = { computer_reference: computer, partition_reference: partition, ...fresh, issued_at: Date.now() / 1000 };
    await t.putCertificate(row);
    return row;
  });
}

type Handler = (f: Fields, reply: FastifyReply, request: FastifyRequest) => Promise<unknown>;

export function registerRoutes(app: FastifyInstance, store: Store, settings: node.MasterSettings, deps: RouteDeps): void {
  const tx = <T>(fn: (t: Tx) => Promise<T>) => store.transaction(fn);
  const read = <T>(fn: (t: Tx) => Promise<T>) => store.read(fn);
  // Every route states who may call it (access.ts), checked before any work.
  const route = (method: 'GET' | 'POST', path: string, rule: ((f: Fields) => Rule) | null, handler: Handler) =>
    app.route({
      method, url: `/${path}`,
      handler: async (request, reply) => {
        const f = fields(request);
        if (rule) await deps.authorize(request, rule(f));
        return handler(f, reply, request);
      },
    });
  const get = (path: string, rule: ((f: Fields) => Rule) | null, handler: Handler) => route('GET', path, rule, handler);
  const post = (path: string, rule: ((f: Fields) => Rule) | null, handler: Handler) => route('POST', path, rule, handler);
  const asComputer = (f: Fields): Rule => ({ kind: 'computer', computer: f.computer_id ?? '' });
  const onPartition = (f: Fields): Rule => ({ kind: 'partition', computer: f.computer_id ?? '', partition: f.computer_partition_id ?? '' });
  const asUser = (): Rule => ({ kind: 'user' });
  // The node polls this the most: answers are reused while the computer's generation is unchanged.
  const cache = new AnswerCache(deps.answerCacheBytes);
  // On SQLite what nodes send most runs synchronously (sqlite-sync.ts); SLAPOS_MASTER_SQLITE_TX=async
  // is only there to compare both (npm run bench -- master-scale --sqlite-tx async,sync).
  const sync = store instanceof SqliteStore && process.env.SLAPOS_MASTER_SQLITE_TX !== 'async' ? store : undefined;
  const partitionArgs = (f: Fields) => [checkId('computer_id', f.computer_id), checkId('computer_partition_id', f.computer_partition_id)] as const;

  const info = async (f: Fields, reply: FastifyReply, request: FastifyRequest) => {
    const computer = checkId('computer_id', f.computer_id);
    const body = sync ? await sync.runSync(false, (t): string | Buffer => {
      const generation = t.computerGeneration(computer);
      const cached = generation === undefined ? undefined : cache.get(computer, generation);
      if (cached !== undefined) return cached;
      const fresh = dumps(syncOps.computerInformation(t, settings, computer));
      if (generation !== undefined) cache.set(computer, generation, fresh);
      return fresh;
    }) : await read(async (t): Promise<string | Buffer> => {
      const generation = await t.computerGeneration(computer);
      const cached = generation === undefined ? undefined : cache.get(computer, generation);
      if (cached !== undefined) return cached;
      const fresh = dumps(await node.computerInformation(t, settings, computer));
      if (generation !== undefined) cache.set(computer, generation, fresh);
      return fresh;
    });
    reply.type('text/xml; charset=utf-8').header('vary', 'accept-encoding');
    if (typeof body === 'string') return reply.send(body);
    return acceptsGzip(request.headers['accept-encoding']) ? reply.header('content-encoding', 'gzip').send(body) : reply.send(inflateAnswer(body));
  };
  get('getFullComputerInformation', asComputer, info);
  get('getComputerInformation', asComputer, info);

  // The computer is named inside the document: checked once decoded.
  post('loadComputerConfigurationFromXML', null, async (f, reply, request) => {
    const value = loads(f.xml ?? '');
    const reference = isRecord(value) && typeof value.reference === 'string' ? value.reference : '';
    await deps.authorize(request, { kind: 'computer', computer: reference });
    await tx((t) => node.loadComputer(t, value));
    return sendText(reply, 'done');
  });

  post('supplySupply', asUser, async (f, reply) => {
    const url = checkUrl(f.url);
    const computer = checkId('computer_id', f.computer_id);
    const state = checkChoice('state', f.state, ['available', 'destroyed'] as const);
    return sendText(reply, await tx((t) => node.supply(t, settings, url, computer, state)));
  });

  for (const [path, state] of [['buildingSoftwareRelease', 'building'], ['availableSoftwareRelease', 'available'], ['softwareReleaseError', 'error']] as const) {
    post(path, asComputer, async (f, reply) => {
      const url = checkUrl(f.url);
      const computer = checkId('computer_id', f.computer_id);
      const log = state === 'error' ? checkText('error_log', f.error_log) : null;
      if (sync) await sync.runSync(true, (t) => syncOps.reportSoftware(t, url, computer, state, log));
      else await tx((t) => node.reportSoftware(t, url, computer, state, log));
      return sendText(reply, 'Ignored');
    });
  }
  post('destroyedSoftwareRelease', asComputer, async (f, reply) => {
    const url = checkUrl(f.url);
    const computer = checkId('computer_id', f.computer_id);
    await tx((t) => node.destroyedSoftware(t, url, computer));
    return sendText(reply, 'OK');
  });

  for (const [path, state] of [['startedComputerPartition', 'started'], ['stoppedComputerPartition', 'stopped'], ['softwareInstanceError', 'error']] as const) {
    post(path, onPartition, async (f, reply) => {
      const [computer, partition] = partitionArgs(f);
      const log = state === 'error' ? checkText('error_log', f.error_log) : null;
      if (sync) await sync.runSync(true, (t) => syncOps.reportPartition(t, computer, partition, state, log));
      else await tx((t) => node.reportPartition(t, computer, partition, state, log));
      return sendText(reply, 'Ignored');
    });
  }

  post('destroyedComputerPartition', asComputer, async (f, reply) => {
    const [computer, partition] = partitionArgs(f);
    return sendText(reply, await tx((t) => inst.destroyedPartition(t, computer, partition)));
  });

  // The node fetches each allocated partition's certificate and hands it to the partition user.
  get('getComputerPartitionCertificate', asComputer, async (f, reply) => {
    const [computer, partition] = partitionArgs(f);
    const row = await read((t) => node.requirePartition(t, computer, partition));
    if (!deps.issuer || row.slap_state !== 'busy') return sendXml(reply, { certificate: '', key: '' });
    const issued = await partitionCertificate(store, deps.issuer, computer, partition);
    return sendXml(reply, { certificate: issued.certificate, key: issued.key });
  });

  get('registerComputerPartition', (f) => ({ kind: 'partition', computer: f.computer_reference ?? '', partition: f.computer_partition_reference ?? '' }), async (f, reply) => {
    const computer = checkId('computer_reference', f.computer_reference);
    const partition = checkId('computer_partition_reference', f.computer_partition_reference);
    return sendXml(reply, await read((t) => node.registerPartition(t, computer, partition)));
  });

  get('getComputerPartitionStatus', onPartition, async (f, reply) => {
    const [computer, partition] = partitionArgs(f);
    await read((t) => node.requirePartition(t, computer, partition));
    return sendXml(reply, 'Not implemented.');
  });

  get('getHostingSubscriptionIpList', onPartition, async (f, reply) => {
    const [computer, partition] = partitionArgs(f);
    const list = await read((t) => inst.treeIpList(t, computer, partition));
    return sendXml(reply, list.map(([a, b]) => new PyTuple([a, b])));
  });

  post('setComputerPartitionConnectionXml', onPartition, async (f, reply) => {
    const [computer, partition] = partitionArgs(f);
    const params = marshalledDict('connection_xml', f.connection_xml);
    const slave = f.slave_reference === undefined || f.slave_reference === '' ? null : checkTitle('slave_reference', f.slave_reference);
    if (sync && slave === null) await sync.runSync(true, (t) => syncOps.setConnection(t, computer, partition, params));
    else await tx((t) => inst.setConnection(t, computer, partition, params, slave));
    return sendText(reply, 'done');
  });

  // The titles the partition's buildout requested (node, after a successful run). The reference's
  // proxy has no such route (404); we record it and collect dropped children (related-ops.ts).
  post('updateComputerPartitionRelatedInstanceList', onPartition, async (f, reply, request) => {
    const [computer, partition] = partitionArgs(f);
    const titles = relatedTitles(loads(f.instance_reference_xml ?? ''));
    const destroyed = await tx((t) => updateRelated(t, computer, partition, titles));
    if (destroyed.length > 0) request.log.info({ computer, partition, destroyed }, 'child instances no longer requested: asked to be destroyed');
    return sendText(reply, 'OK');
  });

  post('softwareInstanceBang', onPartition, async (f, reply) => {
    const [computer, partition] = partitionArgs(f);
    checkText('message', f.message);
    await tx((t) => inst.bangInstance(t, computer, partition));
    return sendText(reply, 'OK');
  });

  post('softwareInstanceRename', onPartition, async (f, reply) => {
    const [computer, partition] = partitionArgs(f);
    const name = checkTitle('new_name', f.new_name);
    if (f.slave_reference) throw badRequest('renaming a shared instance is not supported');
    await tx((t) => inst.renameInstance(t, computer, partition, name));
    return sendText(reply, 'done');
  });

  post('computerBang', asComputer, async (f, reply) => {
    const computer = checkId('computer_id', f.computer_id);
    checkText('message', f.message);
    void computer;
    return sendXml(reply, '');
  });

  post('useComputer', asComputer, async (f, reply) => {
    const computer = checkId('computer_id', f.computer_id);
    const use = checkText('use_string', f.use_string, 8 * 1024 * 1024);
    // Our nodes' id of the report (src/accounting/report.ts); other nodes send none.
    const reportId = f.report_id === undefined ? null : checkId('report_id', f.report_id);
    if (await (sync ? sync.runSync(true, (t) => syncOps.storeUsage(t, computer, use, reportId)) : tx((t) => node.storeUsage(t, computer, use, reportId)))) deps.onUsage?.();
    return sendText(reply, 'OK');
  });

  // Ours (JSON, read-only): what `slapos list` / `slapos info` show; the reference used HATEOAS.
  app.get('/slapos-node/instances', async (request, reply) => {
    await deps.authorize(request, { kind: 'user' });
    const rows = await read((t) => t.listBusyPartitions());
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(rows.map((p) => ({
      title: p.partition_reference, root_title: p.requested_by || p.partition_reference,
      computer_id: p.computer_reference, partition_id: p.reference, software_release: p.software_release,
      software_type: p.software_type, requested_state: p.requested_state, reported_state: p.reported_state,
      parameters: instanceXmlToDict(p.xml), connection_parameters: instanceXmlToDict(p.connection_xml),
    }))));
  });

  // A user requests root instances; a partition requests only as itself (its tree's scope).
  const requestRule = (f: Fields): Rule => (f.computer_id !== undefined || f.computer_partition_id !== undefined
    ? { kind: 'partition-self', computer: f.computer_id ?? '', partition: f.computer_partition_id ?? '' }
    : { kind: 'user' });
  post('requestComputerPartition', requestRule, async (f, reply, httpRequest) => {
    const request: inst.InstanceRequest = {
      softwareRelease: checkUrl(f.software_release),
      softwareType: f.software_type ?? '',
      title: checkTitle('partition_reference', f.partition_reference),
      parameters: marshalledDict('partition_parameter_xml', f.partition_parameter_xml),
      filter: marshalledDict('filter_xml', f.filter_xml),
      state: marshalledState(f.state),
      shared: marshalledBool(f.shared_xml),
    };
    if (request.softwareType.length > 200 || /[\u0000-\u001f]/.test(request.softwareType)) throw badRequest('invalid software_type');
    if (f.computer_id !== undefined || f.computer_partition_id !== undefined) {
      request.requester = { computer: checkId('computer_id', f.computer_id), partition: checkId('computer_partition_id', f.computer_partition_id) };
    }
    const forwarder = deps.forwarder;
    if (forwarder) {
      const reachedAs = `${httpRequest.protocol}://${httpRequest.headers.host ?? ''}/`;
      const decision = await forwarder.decide(request, () => read((t) => inst.allocatedHere(t, request)), reachedAs);
      if (decision.kind === 'refuse') return reply.code(404).type('text/html; charset=utf-8').send(flaskNotFound(decision.message));
      if (decision.kind === 'forward') {
        try {
          return sendXml(reply, await forwarder.forward(decision.entry, request));
        } catch (error) {
          if (error instanceof ForwardError) return reply.code(error.status).type('text/plain; charset=utf-8').send(error.message);
          throw error;
        }
      }
    }
    return sendXml(reply, await tx((t) => inst.requestInstance(t, settings, request)));
  });
}
