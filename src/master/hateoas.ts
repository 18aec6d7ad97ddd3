// The HATEOAS subset that the slapos client's `service list|info` and
// `computer list|info` walk (slap-protocol.md §9.2–9.3, recorded in
// test/fixtures/slap-traffic/10-hateoas.jsonl): root document with two URI
// templates, four searches, a traverse redirect and three kinds of documents.
// Built from the master's rows: every computer, allocated root instances
// (until the node frees them, as the reference), root shared instances still
// in their host's list.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { dictToInstanceXml } from '../slap/instance-xml.js';
import { isRecord, type PyValue } from '../slap/pyvalue.js';
import type { Authorize } from './authorize.js';
import { slaveList } from './render.js';
import type { ComputerRow, PartitionRow, Store, Tx } from './store.js';

/** A JSON float written as Python writes it (a timestamp stays "1.0", never "1"). */
class JsonFloat {
  constructor(readonly value: number) {}
}
type Json = null | boolean | number | string | JsonFloat | Json[] | { [key: string]: Json };

/**
 * Python's json.dumps(value, sort_keys=True, separators=(',', ':')) with
 * ensure_ascii: keys sorted, every character outside space..tilde escaped.
 */
export function pyJson(value: Json): string {
  if (value === null) return 'null';
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return String(value);
  if (value instanceof JsonFloat) {
    const text = String(value.value);
    return Number.isInteger(value.value) && !text.includes('e') ? `${text}.0` : text;
  }
  if (typeof value === 'string') {
    return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }
  if (Array.isArray(value)) return `[${value.map(pyJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${pyJson(k)}:${pyJson(value[k] as Json)}`).join(',')}}`;
}

/** Werkzeug's redirect page, byte for byte. */
export function redirectPage(location: string): string {
  const shown = location.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#x27;');
  return '<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n' +
    `<p>You should be redirected automatically to the target URL: <a href="${shown}">${shown}</a>. If not, click the link.\n`;
}

// ---- queries (decide) ----

export type HateoasQuery =
  | { kind: 'instances'; title?: string }
  | { kind: 'computers'; reference?: string };

const INSTANCE_TREES = 'portal_type:"Instance Tree" AND validation_state:validated';
const COMPUTE_NODES = 'portal_type:"Compute Node" AND validation_state:validated';
/** A double-quoted value: any character but `"` and `\`, or a backslash escape. */
const QUOTED = /^"((?:[^"\\]|\\.)*)"$/s;

/**
 * The four queries the client sends, parsed; anything else is an error message
 * (the reference answers 400 "Unhandled query", or 500 for an unquoted value).
 */
export function parseQuery(query: string): HateoasQuery | string {
  for (const [base, kind, key] of [[INSTANCE_TREES, 'instances', 'title'], [COMPUTE_NODES, 'computers', 'reference']] as const) {
    if (query === base) return { kind };
    const prefix = `${base} AND ${key}:=`;
    if (!query.startsWith(prefix)) continue;
    const quoted = QUOTED.exec(query.slice(prefix.length));
    if (!quoted) return `Unhandled query: ${query}`;
    const value = (quoted[1] ?? '').replace(/\\(.)/gs, '$1');
    return kind === 'instances' ? { kind, title: value } : { kind, reference: value };
  }
  return `Unhandled query: ${query}`;
}

const partitionUrl = (title: string) => `/hateoas/partitions/${encodeURIComponent(title)}`;
const sharedUrl = (title: string) => `/hateoas/shared/${encodeURIComponent(title)}`;
const computerUrl = (reference: string) => `/hateoas/computers/${encodeURIComponent(reference)}`;

/**
 * An instance tree: an allocated root instance. One requested destroyed stays
 * until the node frees its partition (as the reference), shown with that state.
 */
const isRootTree = (p: PartitionRow) => p.slap_state === 'busy' && p.requested_by === '' && p.partition_reference !== null;

/** The reference's partition17 row (its columns only) plus the HATEOAS fields. */
function partitionRow(p: PartitionRow): Json {
  const title = p.partition_reference ?? '';
  return {
    computer_reference: p.computer_reference, connection_xml: p.connection_xml, partition_reference: p.partition_reference,
    reference: p.reference, requested_by: p.requested_by, requested_state: p.requested_state, slap_state: p.slap_state,
    slave_instance_list: p.slave_instance_list, software_release: p.software_release, software_type: p.software_type,
    timestamp: p.timestamp === null ? null : new JsonFloat(p.timestamp), xml: p.xml,
    relative_url: partitionUrl(title), title, url_string: p.software_release,
  };
}

export interface RootShared {
  title: string;
  reference: string;
  host: PartitionRow;
  /** The entry of the host's slave_instance_list. */
  entry: Record<string, PyValue>;
}

/** Root shared instances (slave reference "_<title>") still listed by an allocated host. */
export function rootSharedInstances(partitions: PartitionRow[]): RootShared[] {
  const out: RootShared[] = [];
  for (const host of partitions) {
    if (host.slap_state !== 'busy') continue;
    for (const entry of slaveList(host)) {
      if (!isRecord(entry)) continue;
      const reference = entry.slave_reference;
      if (typeof reference !== 'string' || !reference.startsWith('_') || reference.length < 2) continue;
      out.push({ title: reference.slice(1), reference, host, entry });
    }
  }
  return out;
}

export async function search(tx: Tx, query: HateoasQuery): Promise<Json[]> {
  if (query.kind === 'computers') {
    const computers = query.reference === undefined
      ? await tx.listComputers()
      : [await tx.getComputer(query.reference)].filter((c): c is ComputerRow => c !== undefined);
    return computers.map((c) => ({ address: c.address, netmask: c.netmask, reference: c.reference, relative_url: computerUrl(c.reference), title: c.reference }));
  }
  // One title (`slapos service info`, and any client polling one service): index lookups, not the whole fleet.
  const title = query.title;
  const candidates = title === undefined ? await tx.listBusyPartitions() : await tx.findInstancesByTitle(title);
  const roots = candidates.filter(isRootTree).map(partitionRow);
  const shared = (title === undefined ? rootSharedInstances(candidates) : await rootSharedByTitle(tx, title))
    .map((s) => ({ relative_url: sharedUrl(s.title), title: s.title, url_string: s.host.software_release }));
  return [...roots, ...shared];
}

/**
 * The root shared instances of one title, found through their shared_instance
 * rows (every requested shared instance has one, imported ones too) and the
 * host each names; a row without hosted_by (an old database) falls back to
 * reading every host's list.
 */
async function rootSharedByTitle(tx: Tx, title: string): Promise<RootShared[]> {
  const rows = await tx.findSlaves(`_${title}`);
  if (rows.some((r) => r.hosted_by === null)) return rootSharedInstances(await tx.listBusyPartitions()).filter((s) => s.title === title);
  const hosts: PartitionRow[] = [];
  for (const row of rows) {
    const host = await tx.getPartition(row.computer_reference, row.hosted_by!);
    if (host) hosts.push(host);
  }
  return rootSharedInstances(hosts).filter((s) => s.title === title);
}

const field = (value: Json, key: string, type = 'StringField'): Json => ({ default: value, key, type });

function instanceDocument(fields: {
  connection: string | null; title: string; shared: boolean; state: string; type: string | null; parameters: string | null; url: string | null;
}): Json {
  return {
    _embedded: {
      _view: {
        form_id: field('InstanceTree_viewAsHateoas', 'form_id'),
        my_connection_parameter_list: field(fields.connection, 'field_my_connection_parameter_list'),
        my_reference: field(fields.title, 'field_my_reference'),
        my_root_slave: field(fields.shared ? 1 : 0, 'field_my_root_slave', 'IntegerField'),
        my_slap_state: field(fields.state, 'field_my_slap_state'),
        my_source_reference: field(fields.type, 'field_my_source_reference'),
        my_text_content: field(fields.parameters, 'field_my_text_content'),
        my_url_string: field(fields.url, 'field_my_url_string'),
      },
    },
    _links: { type: { name: 'Instance Tree' } },
  };
}

/** /hateoas/partitions/<title>: the root instance of that title, else a child instance of that title. */
export async function partitionDocument(tx: Tx, title: string): Promise<Json | undefined> {
  const p = (await tx.findInstance(title, '')) ?? (await tx.findInstancesByTitle(title))[0];
  if (!p) return undefined;
  return instanceDocument({
    connection: p.connection_xml, title, shared: false, state: p.requested_state, type: p.software_type, parameters: p.xml, url: p.software_release,
  });
}

const SLAVE_KEYS = new Set(['slave_title', 'slave_reference', 'slap_software_type']);

/** /hateoas/shared/<title>: a root shared instance still hosted. */
export async function sharedDocument(tx: Tx, title: string): Promise<Json | undefined> {
  const [found] = await rootSharedByTitle(tx, title);
  if (!found) return undefined;
  const slave = await tx.getSlave(found.host.computer_reference, found.reference);
  const parameters = Object.fromEntries(Object.entries(found.entry).filter(([k]) => !SLAVE_KEYS.has(k)));
  const type = found.entry.slap_software_type;
  return instanceDocument({
    connection: slave?.connection_xml ?? null, title, shared: true, state: 'unused',
    type: typeof type === 'string' ? type : null, parameters: dictToInstanceXml(parameters), url: found.host.software_release,
  });
}

export async function computerDocument(tx: Tx, reference: string): Promise<Json | undefined> {
  const c = await tx.getComputer(reference);
  if (!c) return undefined;
  return {
    _embedded: { _view: { form_id: field(c.reference, 'computer'), my_reference: field(c.reference, 'reference'), my_title: field(c.reference, 'reference') } },
    _links: { type: { name: 'Computer' } },
  };
}

// ---- routes (do) ----

/** The base URL the client reached us with (Host header, as the reference's url_for(_external=True)). */
function baseUrl(request: FastifyRequest): string {
  const host = request.headers.host ?? `${request.hostname}`;
  return `${request.protocol}://${host}`;
}

const sendJson = (reply: FastifyReply, value: Json) => reply.type('application/json').send(`${pyJson(value)}\n`);
const redirect = (reply: FastifyReply, status: 302 | 308, location: string) =>
  reply.code(status).header('location', location).type('text/html; charset=utf-8').send(redirectPage(location));
const notFoundJson = (reply: FastifyReply, what: string) => reply.code(404).type('text/plain; charset=utf-8').send(`${what} does not exist`);

export function registerHateoas(app: FastifyInstance, store: Store, authorize: Authorize): void {
  const asUser = (request: FastifyRequest) => authorize(request, { kind: 'user' });
  app.get('/hateoas', async (request, reply) => {
    await asUser(request);
    return redirect(reply, 308, `${baseUrl(request)}/hateoas/`);
  });
  app.get('/hateoas/', async (request, reply) => {
    await asUser(request);
    const q = request.query as Record<string, unknown>;
    const text = (key: string): string | undefined => (typeof q[key] === 'string' ? q[key] : undefined);
    const mode = text('mode');
    if (mode === undefined) {
      const base = `${baseUrl(request)}/hateoas/`;
      return sendJson(reply, {
        _links: {
          raw_search: { href: `${base}?mode=search&query={query}&select_list={select_list}` },
          traverse: { href: `${base}?mode=traverse&relative_url={relative_url}&view={view}` },
        },
      });
    }
    if (mode === 'search') {
      const parsed = parseQuery(text('query') ?? '');
      if (typeof parsed === 'string') return reply.code(400).type('text/plain; charset=utf-8').send(parsed);
      const contents = await store.read((t) => search(t, parsed));
      return sendJson(reply, { _embedded: { contents } });
    }
    if (mode === 'traverse') {
      const target = text('relative_url') ?? '';
      // Only our own documents: the reference's traverse is an open redirect.
      if (!/^\/hateoas\/(partitions|shared|computers)\/[^/]+$/.test(target)) {
        return reply.code(400).type('text/plain; charset=utf-8').send(`relative_url must be a /hateoas/ document, not ${JSON.stringify(target.slice(0, 200))}`);
      }
      return redirect(reply, 302, target);
    }
    return reply.code(400).type('text/plain; charset=utf-8').send(`Unsupported mode: ${mode.slice(0, 200)}`);
  });
  for (const [kind, lookup, what] of [
    ['partitions', partitionDocument, 'Instance'], ['shared', sharedDocument, 'Shared instance'], ['computers', computerDocument, 'Computer'],
  ] as const) {
    // A wildcard, not ":name": titles may be longer than find-my-way's parameter limit.
    app.get(`/hateoas/${kind}/*`, async (request, reply) => {
      await asUser(request);
      const name = (request.params as { '*': string })['*'];
      const doc = await store.read((t) => lookup(t, name));
      return doc === undefined ? notFoundJson(reply, `${what} ${name}`) : sendJson(reply, doc);
    });
  }
}
