// The web view and its JSON API (docs/master.md "Web view and JSON API"):
//   GET /                      the view (lib/web/index.html; the page is rendered in the browser)
//   GET /ui/<asset>            its scripts and styles, shipped in the package (lib/web, node_modules/uplot)
//   GET /api/fleet             computers, partitions, software releases, promise results
//   GET /api/instances         instance trees with parameters (?secrets=1 to reveal secret-looking ones)
//   GET /api/usage             usage series: ?scope=…&resource=cpu,memory&range=day
// Every route answers only what the caller's identity may see (viewer.ts).
import type { FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Authorize, LocalPeers } from '../authorize.js';
import type { Store } from '../store.js';
import { isRange, RANGES, RESOURCE_NAMES, RAW_DAYS, HOURLY_DAYS, DAILY_DAYS, type Range, type SeriesResource } from '../usage-series.js';
import { badRequest } from '../validate.js';
import { gatherFleet, gatherInstances, gatherUsage, parseScope } from './fleet-data.js';
import { makeViewerOf } from './viewer.js';

/** lib/web of the package (from dist/src/master/web/). */
export const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'lib', 'web');

const TYPES: Record<string, string> = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.html': 'text/html; charset=utf-8' };

/** The view's files, read once: ours from lib/web, the charting library from its npm package. */
function loadAssets(): Map<string, { body: Buffer; type: string }> {
  const require = createRequire(import.meta.url);
  const files: Array<[string, string]> = [
    ['app.js', path.join(WEB_DIR, 'app.js')],
    ['app.css', path.join(WEB_DIR, 'app.css')],
    ['uPlot.min.js', require.resolve('uplot/dist/uPlot.iife.min.js')],
    ['uPlot.min.css', require.resolve('uplot/dist/uPlot.min.css')],
  ];
  return new Map(files.map(([name, file]) => [name, { body: readFileSync(file), type: TYPES[path.extname(name)] as string }]));
}

/** Scripts and styles from this origin only; no inline script, nothing fetched elsewhere. */
const VIEW_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const DEFAULT_RESOURCES = ['cpu', 'memory', 'disk', 'network_in', 'network_out'];

export function registerWebView(app: FastifyInstance, store: Store, authorize: Authorize, authenticate: boolean, local: LocalPeers = {}): void {
  const viewerOf = makeViewerOf(authorize, authenticate, local);
  const assets = loadAssets();
  const index = readFileSync(path.join(WEB_DIR, 'index.html'));

  app.get('/', async (request, reply) => {
    await viewerOf(request);
    return reply.type('text/html; charset=utf-8').header('content-security-policy', VIEW_CSP).header('cache-control', 'no-cache').send(index);
  });
  app.get<{ Params: { name: string } }>('/ui/:name', async (request, reply) => {
    const asset = assets.get(request.params.name);
    if (!asset) return reply.code(404).type('text/plain; charset=utf-8').send('no such asset');
    return reply.type(asset.type).header('cache-control', 'no-cache').send(asset.body);
  });

  const json = (value: unknown) => JSON.stringify(value);
  app.get('/api/fleet', async (request, reply) => {
    const viewer = await viewerOf(request);
    const computers = await store.read((tx) => gatherFleet(tx, viewer));
    return reply.type('application/json').send(json({ viewer: viewer.who, generated_at: Date.now() / 1000, computers }));
  });
  app.get<{ Querystring: { secrets?: string } }>('/api/instances', async (request, reply) => {
    const viewer = await viewerOf(request);
    const reveal = request.query.secrets === '1';
    const instances = await store.read((tx) => gatherInstances(tx, viewer, reveal));
    return reply.type('application/json').send(json({ viewer: viewer.who, secrets: viewer.secrets && reveal, generated_at: Date.now() / 1000, instances }));
  });
  app.get<{ Querystring: { scope?: string; resource?: string; range?: string; end?: string } }>('/api/usage', async (request, reply) => {
    const viewer = await viewerOf(request);
    const scope = parseScope(request.query.scope ?? 'fleet');
    if (!scope) throw badRequest(`scope must be fleet, computer:<id>, partition:<computer>/<partition> or instance:<title>, not ${JSON.stringify(request.query.scope)}`);
    const range = request.query.range ?? 'day';
    if (!isRange(range)) throw badRequest(`range must be one of ${Object.keys(RANGES).join(', ')}, not ${JSON.stringify(range)}`);
    const names = (request.query.resource ?? DEFAULT_RESOURCES.join(',')).split(',').filter(Boolean);
    const unknown = names.filter((n) => !Object.hasOwn(RESOURCE_NAMES, n));
    if (unknown.length || names.length === 0) throw badRequest(`resource must be a list of ${Object.keys(RESOURCE_NAMES).join(', ')}; unknown: ${unknown.join(', ') || '(none given)'}`);
    const end = request.query.end === undefined ? Date.now() / 1000 : Number(request.query.end);
    if (!Number.isFinite(end) || end <= 0) throw badRequest('end must be a unix time in seconds');
    const series = await store.read(async (tx) => {
      const out = [];
      for (const name of names) out.push({ name, ...(await gatherUsage(tx, viewer, scope, RESOURCE_NAMES[name] as SeriesResource, range as Range, end)) });
      return out;
    });
    return reply.type('application/json').send(json({
      viewer: viewer.who, scope: request.query.scope ?? 'fleet', range, end,
      retention_days: { raw: RAW_DAYS, hourly: HOURLY_DAYS, daily: DAILY_DAYS }, series,
    }));
  });
}
