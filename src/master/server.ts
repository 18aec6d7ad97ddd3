// Building and running the master: fastify with form parsing and body limits,
// error mapping to 4xx, the reference's 404 page for routes it lacks, and the
// bind policy (loopback only without TLS unless allow_insecure_bind).
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';
import { MarshalError, XmlInputError } from '../slap/errors.js';
import type { MasterSettings } from './node-ops.js';
import { identityOfRequest, makeAuthorizer, type LocalPeers } from './authorize.js';
import { registerCache } from './cache-routes.js';
import { BlobStore } from './cache-storage.js';
import { issueCertificate, type CaFiles } from './certificates.js';
import { registerComputerToken } from './computer-token.js';
import { registerHateoas } from './hateoas.js';
import { registerJsonApi } from './json-api.js';
import { newRunId, registerMethodNotAllowed, registerRunId } from './extra-routes.js';
import { DEFAULT_BODY_LIMIT, DEFAULT_TIMEOUTS, jsonTooDeep, MAX_JSON_DEPTH, type MasterTimeouts } from './limits.js';
import { Forwarder, type MultimasterEntry } from './multimaster.js';
import { parseSoftwareProductList, registerSoftwareProducts } from './software-product.js';
import { MasterMetrics, registerMetrics } from './metrics.js';
import { isPostgresUri, PgStore } from './pg-store.js';
import { registerRoutes } from './routes.js';
import { applyReleaseRoot, DEFAULT_ROOT } from './release-root.js';
import { describeImport } from './slapproxy-import.js';
import { SqliteStore } from './sqlite-store.js';
import { gatherStatus, renderStatusPage } from './status-page.js';
import type { Store } from './store.js';
import { MasterError } from './validate.js';
import { registerWebView } from './web/routes.js';
import { registerPromiseResults } from './promise-results.js';
import { registerHardwareStatus } from './hardware-status.js';
import { closeUnixListener, listenOnUnixSocket } from './unix-listener.js';

/** Flask's 404 page, byte for byte (clients only look at the status). */
export const NOT_FOUND_PAGE =
  '<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n' +
  '<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n';

export interface MasterOptions extends MasterSettings {
  store: Store;
  logger?: Logger | false;
  /** Largest request body (bytes); a formatted computer of 1,000 partitions is well under 4 MiB. */
  bodyLimit?: number;
  /** With `ca`, clients must present a certificate signed by it (else 403), and access rules apply. */
  https?: { key: Buffer; cert: Buffer; ca?: Buffer };
  /** The CA's certificate and key files: getComputerPartitionCertificate then issues real certificates. */
  issuingCa?: CaFiles;
  /** Connection timeouts (ms), each defaulting to DEFAULT_TIMEOUTS (limits.ts). */
  timeouts?: Partial<MasterTimeouts>;
  /** This process's id for GET /getRunId (random when absent). */
  runId?: string;
  /** [slapproxy] software_product_list: product reference → software release URL. */
  softwareProducts?: ReadonlyMap<string, string>;
  /** [multimaster/<url>] sections: requests forwarded to other masters. */
  multimaster?: readonly MultimasterEntry[];
  /** The network cache (/shacache, /shadir); absent: not served. */
  cache?: { directory: string; quota: number; maxBlob: number; download: 'open' | 'authenticated' };
  /** Plain HTTP on loopback: the node's instance_root and computer, to know partition users by uid (docs/master.md). */
  localPeers?: LocalPeers;
}

/**
 * The computer and partition a SLAP request names (its computer_id and
 * computer_partition_id, from the query or the form body): identifiers only,
 * never the parameters or anything secret.
 */
function requestSubject(request: { query: unknown; body: unknown }): { computer?: string; partition?: string } {
  const out: { computer?: string; partition?: string } = {};
  for (const source of [request.query, request.body]) {
    if (typeof source !== 'object' || source === null) continue;
    const { computer_id: computer, computer_partition_id: partition } = source as Record<string, unknown>;
    if (typeof computer === 'string' && out.computer === undefined) out.computer = computer.slice(0, 200);
    if (typeof partition === 'string' && out.partition === undefined) out.partition = partition.slice(0, 200);
  }
  return out;
}

export async function buildMaster(options: MasterOptions): Promise<FastifyInstance> {
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  // Node's own limits (http.createServer / https.createServer options): slow headers, slow bodies.
  const nodeServer = { headersTimeout: timeouts.headers, requestTimeout: timeouts.request, connectionsCheckingInterval: timeouts.checkInterval };
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    // One line per request, written by the onResponse hook below (not fastify's two).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // A sha512 in a path is 128 characters (the network cache); fastify's default is 100.
    routerOptions: { maxParamLength: 600 },
    requestTimeout: timeouts.request,
    connectionTimeout: timeouts.idle,
    keepAliveTimeout: timeouts.keepAlive,
    http: nodeServer,
    // Ask for a client certificate but let the handshake finish without one: the
    // route answers 403 with a reason instead of an opaque TLS failure.
    ...(options.https
      ? { https: { ...options.https, ...nodeServer, handshakeTimeout: timeouts.handshake, ...(options.https.ca ? { requestCert: true, rejectUnauthorized: false } : {}) } }
      : {}),
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
  await app.register(formbody, { bodyLimit });
  // JSON bodies: nesting deeper than MAX_JSON_DEPTH is 400 before parsing (else a stack overflow, 500).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit }, (request, body, done) => {
    if (jsonTooDeep(body as string, MAX_JSON_DEPTH)) {
      done(Object.assign(new Error(`JSON nested deeper than ${MAX_JSON_DEPTH} levels`), { statusCode: 400 }), undefined);
      return;
    }
    parseJson(request, body as string, done);
  });
  app.setErrorHandler((error, request, reply) => {
    if (error instanceof MasterError) return reply.code(error.status).type('text/plain; charset=utf-8').send(error.message);
    if (error instanceof XmlInputError || error instanceof MarshalError) {
      return reply.code(400).type('text/plain; charset=utf-8').send(error.message);
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) return reply.code(status).type('text/plain; charset=utf-8').send((error as Error).message);
    request.log.error({ err: error }, 'internal error');
    return reply.code(500).type('text/plain; charset=utf-8').send('internal error');
  });
  // A known path asked with another method answers 405 with Allow (as Flask); the rest, Flask's 404 page.
  registerMethodNotAllowed(app, (reply) => reply.code(404).type('text/html; charset=utf-8').send(NOT_FOUND_PAGE));
  app.addHook('onResponse', async (request, reply) => {
    request.log.info({ ...requestSubject(request), method: request.method, route: request.routeOptions.url ?? 'unknown',
      status: reply.statusCode, duration_ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request');
  });
  const store = options.store;
  const authorize = makeAuthorizer(store, Boolean(options.https?.ca), options.localPeers);
  const metrics = new MasterMetrics();
  const ca = options.issuingCa;
  const runId = options.runId ?? newRunId();
  // Always there: a request naming another master is forwarded or refused, never allocated here.
  const forwarder = new Forwarder(options.multimaster ?? [], runId);
  app.addHook('onClose', async () => forwarder.close());
  registerMetrics(app, store, metrics, authorize);
  registerRoutes(app, store, { defaultComputer: options.defaultComputer }, {
    authorize,
    issuer: ca ? (computer, partition) => issueCertificate(ca, 'partition', `${computer}/${partition}`) : undefined,
    onUsage: () => metrics.usageReceived.inc(),
    forwarder,
  });
  registerJsonApi(app, store, { defaultComputer: options.defaultComputer }, authorize);
  registerHateoas(app, store, authorize);
  registerRunId(app, runId);
  registerComputerToken(app, store, authorize, { ca });
  registerSoftwareProducts(app, options.softwareProducts ?? new Map(), authorize);
  if (options.cache) {
    const authenticate = Boolean(options.https?.ca);
    await registerCache(app, store, {
      blobs: new BlobStore(options.cache), download: options.cache.download, identify: (request) => identityOfRequest(request, authenticate),
    });
  }
  registerWebView(app, store, authorize, Boolean(options.https?.ca), options.localPeers);
  registerPromiseResults(app, store, authorize);
  registerHardwareStatus(app, store, authorize);
  // The plain tables of before the web view: no script, for text browsers and scripts.
  app.get('/status', async (request, reply) => {
    await authorize(request, { kind: 'user' });
    const status = await store.read(gatherStatus);
    return reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'").send(renderStatusPage(status));
  });
  app.addHook('onClose', async () => options.store.close());
  return app;
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '[::1]';
}

export interface ProxyConfig {
  host: string;
  port: number;
  database_uri: string;
  computer_id?: string | undefined;
  allow_insecure_bind: boolean;
  server_key_file?: string | undefined;
  server_cert_file?: string | undefined;
  ca_file?: string | undefined;
  ca_key_file?: string | undefined;
  /** Lines "<product> <url>" ([slapproxy] software_product_list). */
  software_product_list?: string | undefined;
  /** The network cache's blob directory; default: `shacache` beside an SQLite database (PostgreSQL: none, no cache). */
  shacache_directory?: string | undefined;
  shacache_quota?: number | undefined;
  shacache_max_blob?: number | undefined;
  shacache_download?: 'open' | 'authenticated' | undefined;
  /** Where local software release paths live (release-root.ts); default /. */
  local_software_release_root?: string | undefined;
  /** ours: also serve plain HTTP on this unix socket, callers known by SO_PEERCRED (unix-listener.ts). */
  unix_socket?: string | undefined;
}

/** Where the cache's blobs go: configured, else next to an SQLite database; PostgreSQL needs it configured. */
export function cacheDirectory(config: Pick<ProxyConfig, 'database_uri' | 'shacache_directory'>): string | undefined {
  if (config.shacache_directory) return config.shacache_directory;
  if (isPostgresUri(config.database_uri) || config.database_uri === ':memory:') return undefined;
  return path.join(path.dirname(path.resolve(config.database_uri)), 'shacache');
}

/** The store named by database_uri: PostgreSQL for postgres(ql):// URIs, else an SQLite file. */
export async function openStore(databaseUri: string, logger?: Logger | false): Promise<Store> {
  if (isPostgresUri(databaseUri)) return PgStore.open(databaseUri);
  // File-mode warnings (sqlite-store.ts) go to the master's log.
  const store = new SqliteStore(databaseUri, logger ? (message) => logger.warn(message) : undefined);
  // A reference slapproxy database was converted: say what was carried over.
  if (store.imported) {
    if (logger) logger.warn({ import: store.imported }, describeImport(store.imported));
    else process.stderr.write(`${describeImport(store.imported)}\n`);
  }
  return store;
}

/** Records the local software release root; when it moved, rebases the stored local-path URLs (release-root.ts). */
async function applyRoot(store: Store, root: string, logger: Logger | false): Promise<void> {
  const isFile = (file: string) => {
    try {
      return statSync(file).isFile();
    } catch {
      return false;
    }
  };
  const backup = store instanceof SqliteStore ? () => store.backup() : undefined;
  const update = await applyReleaseRoot(store, root, isFile, backup);
  if (update.change === 'same' || !logger) return;
  const fields = { code: 'RELEASE_ROOT_CHANGED', from: update.from, to: update.to, change: update.change, rebased: update.rebased.size, backup: update.backup };
  if (update.change === 'rebase') logger.warn(fields, 'local software release root changed: software URLs under the old root rebased');
  else logger.info(fields, 'local software release root changed: nothing to rebase (one root is inside the other)');
}

/** Opens the store, builds and starts listening; returns the app and its URL. */
export async function startMaster(
  config: ProxyConfig, computerId: string, logger: Logger | false, multimaster: readonly MultimasterEntry[] = [], localPeers: LocalPeers = {},
): Promise<{ app: FastifyInstance; url: string }> {
  const tls = config.server_key_file && config.server_cert_file;
  if (!tls && !isLoopback(config.host) && !config.allow_insecure_bind) {
    throw new Error(`refusing to serve plain HTTP on ${config.host}: use TLS (server_key_file, server_cert_file) or set allow_insecure_bind = true`);
  }
  if (config.ca_key_file && !config.ca_file) throw new Error('ca_key_file needs ca_file (the CA certificate it belongs to)');
  if (config.ca_file && !tls) throw new Error('ca_file (client certificates) needs TLS: set server_key_file and server_cert_file');
  const https = tls
    ? {
        key: readFileSync(config.server_key_file as string),
        cert: readFileSync(config.server_cert_file as string),
        ...(config.ca_file ? { ca: readFileSync(config.ca_file) } : {}),
      }
    : undefined;
  const issuingCa = config.ca_file && config.ca_key_file ? { certFile: config.ca_file, keyFile: config.ca_key_file } : undefined;
  let softwareProducts: Map<string, string>;
  try {
    softwareProducts = parseSoftwareProductList(config.software_product_list ?? '');
  } catch (error) {
    throw new Error(`[slapproxy] software_product_list: ${(error as Error).message}`);
  }
  // Unreadable identity files of a [multimaster/…] section are reported now, not at the first forward.
  for (const entry of multimaster) {
    for (const file of [entry.key, entry.cert, entry.masterCaFile]) {
      if (!file) continue;
      try {
        readFileSync(file);
      } catch (error) {
        throw new Error(`[multimaster/${entry.url}]: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      }
    }
  }
  const store = await openStore(config.database_uri, logger);
  try {
    await applyRoot(store, config.local_software_release_root ?? DEFAULT_ROOT, logger);
  } catch (error) {
    await store.close();
    throw error;
  }
  const cacheDir = cacheDirectory(config);
  const cache = cacheDir === undefined ? undefined : {
    directory: cacheDir,
    quota: config.shacache_quota ?? Number.MAX_SAFE_INTEGER,
    maxBlob: config.shacache_max_blob ?? 16 * 1024 ** 3,
    download: config.shacache_download ?? 'open',
  };
  const app = await buildMaster({
    store, logger, defaultComputer: computerId, softwareProducts, multimaster, localPeers, ...(cache ? { cache } : {}),
    ...(https ? { https } : {}), ...(issuingCa ? { issuingCa } : {}),
  });
  let unix: import('node:http').Server | undefined;
  if (config.unix_socket) {
    const socket = config.unix_socket;
    app.addHook('onClose', async () => {
      if (unix) await closeUnixListener(unix, socket);
    });
  }
  await app.listen({ host: config.host, port: config.port });
  if (config.unix_socket) {
    try {
      unix = await listenOnUnixSocket(app, config.unix_socket, localPeers);
    } catch (error) {
      await app.close();
      throw error;
    }
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return { app, url: `${tls ? 'https' : 'http'}://${host}:${port}/` };
}
