// The client side of the master's HATEOAS interface, as the reference's
// `slapos service|computer list|info` walk it (slap-protocol.md §9.3): the
// root document (after the 308 of `/hateoas`), its `raw_search` and `traverse`
// URI templates, and the document a traverse redirects to.
import { Agent, request, type Dispatcher } from '../vendor/undici.js';
import type { SlapClientOptions } from './client.js';
import { MasterUnreachableError, SlapHttpError, SlapNotFoundError, SlapProtocolError } from './errors.js';

type JsonObject = Record<string, unknown>;
const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** RFC 6570 simple expansion: every character but the unreserved ones percent-encoded (UTF-8). */
export function expandTemplate(template: string, values: Record<string, string | string[]>): string {
  const encode = (text: string) => [...Buffer.from(text, 'utf8')]
    .map((byte) => (/[A-Za-z0-9\-._~]/.test(String.fromCharCode(byte)) ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`))
    .join('');
  return template.replace(/\{([^}]*)\}/g, (_m, name: string) => {
    const value = values[name];
    if (value === undefined) return '';
    return Array.isArray(value) ? value.map(encode).join(',') : encode(value);
  });
}

export const INSTANCE_TREES = 'portal_type:"Instance Tree" AND validation_state:validated';
export const COMPUTE_NODES = 'portal_type:"Compute Node" AND validation_state:validated';
/** `key:="value"`, the value quoted and escaped as the reference client does. */
export const exactly = (key: string, value: string) => `${key}:=${JSON.stringify(value)}`;

const MAX_REDIRECTS = 5;

export class HateoasClient {
  private readonly dispatcher: Dispatcher;
  private links: { search: string; traverse: string } | undefined;

  constructor(readonly restUrl: string, options: SlapClientOptions = {}) {
    const timeout = options.timeoutMs ?? 60_000;
    this.dispatcher = new Agent({ connect: { ...(options.tls ?? {}) }, headersTimeout: timeout, bodyTimeout: timeout });
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  /** GET a JSON document, following redirects (relative or absolute) as the reference's client does. */
  async getJson(url: string): Promise<unknown> {
    let current = url;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      let res: Dispatcher.ResponseData;
      try {
        res = await request(current, {
          method: 'GET', dispatcher: this.dispatcher,
          headers: { accept: 'application/hal+json, application/json', 'cache-control': 'no-cache' },
        });
      } catch (error) {
        throw new MasterUnreachableError('hateoas', current, error);
      }
      const body = await res.body.text();
      const location = res.headers.location;
      if ([301, 302, 303, 307, 308].includes(res.statusCode) && typeof location === 'string') {
        current = new URL(location, current).href;
        continue;
      }
      if (res.statusCode === 404) throw new SlapNotFoundError(new URL(current).pathname, 404, body.slice(0, 200));
      if (res.statusCode < 200 || res.statusCode >= 300) throw new SlapHttpError(new URL(current).pathname, res.statusCode, body.slice(0, 200));
      try {
        return JSON.parse(body) as unknown;
      } catch {
        throw new SlapProtocolError(new URL(current).pathname, 'answer is not JSON');
      }
    }
    throw new SlapProtocolError(url, `more than ${MAX_REDIRECTS} redirects`);
  }

  private async root(): Promise<{ search: string; traverse: string }> {
    if (this.links) return this.links;
    const doc = await this.getJson(this.restUrl);
    const links = isObject(doc) && isObject(doc._links) ? doc._links : {};
    const href = (name: string) => {
      const link = links[name];
      if (!isObject(link) || typeof link.href !== 'string') {
        throw new SlapProtocolError(this.restUrl, `the root document has no ${name} link: is master_rest_url the master's HATEOAS root?`);
      }
      return link.href;
    };
    this.links = { search: href('raw_search'), traverse: href('traverse') };
    return this.links;
  }

  /** Rows of a search (`_embedded.contents`). */
  async search(query: string, selectList: string[]): Promise<JsonObject[]> {
    const { search } = await this.root();
    const doc = await this.getJson(expandTemplate(search, { query, select_list: selectList }));
    const contents = isObject(doc) && isObject(doc._embedded) ? doc._embedded.contents : undefined;
    if (!Array.isArray(contents)) throw new SlapProtocolError('hateoas search', 'no _embedded.contents in the answer');
    return contents.filter(isObject);
  }

  /** The document at `relativeUrl` (traverse, view slaposjs_view): its `_view` fields, `my_` stripped, by their default. */
  async traverse(relativeUrl: string): Promise<Record<string, unknown>> {
    const { traverse } = await this.root();
    const doc = await this.getJson(expandTemplate(traverse, { relative_url: relativeUrl, view: 'slaposjs_view' }));
    const view = isObject(doc) && isObject(doc._embedded) && isObject(doc._embedded._view) ? doc._embedded._view : {};
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(view)) {
      if (isObject(value) && 'default' in value) out[key.startsWith('my_') ? key.slice(3) : key] = value.default;
    }
    return out;
  }
}
