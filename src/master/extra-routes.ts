// Small parts of the reference's HTTP surface around the SLAP core
// (slap-protocol.md §9): GET /getRunId, and 405 with Allow for a known path
// asked with another method (Flask's behaviour) instead of 404.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { randomBytes } from 'node:crypto';

/** A random 32-character id of this master process (the reference's uuid4().hex). */
export const newRunId = (): string => randomBytes(16).toString('hex');

/** GET /getRunId: the multimaster self-check compares it with its own (multimaster.ts). */
export function registerRunId(app: FastifyInstance, runId: string): void {
  app.get('/getRunId', async (_request, reply) => reply.type('text/plain; charset=utf-8').send(runId));
}

/** Flask's 405 page, byte for byte. */
export const METHOD_NOT_ALLOWED_PAGE =
  '<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n' +
  '<p>The method is not allowed for the requested URL.</p>\n';

/**
 * Call before any route is added: remembers each static path's methods, and
 * makes the not-found handler answer 405 + Allow when the path exists with
 * other methods. Parametric paths (":x", "*") keep their 404.
 */
export function registerMethodNotAllowed(app: FastifyInstance, notFound: (reply: FastifyReply) => unknown): void {
  const methods = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    const urls = [route.url, route.path].filter((u): u is string => typeof u === 'string');
    const list = Array.isArray(route.method) ? route.method : [route.method];
    for (const url of new Set(urls)) {
      if (url.includes(':') || url.includes('*')) continue;
      const set = methods.get(url) ?? new Set<string>();
      for (const m of list) set.add(String(m).toUpperCase());
      methods.set(url, set);
    }
  });
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '';
    const allowed = methods.get(path);
    if (allowed && !allowed.has(request.method)) {
      return reply.code(405).header('allow', [...allowed].sort().join(', ')).type('text/html; charset=utf-8').send(METHOD_NOT_ALLOWED_PAGE);
    }
    return notFound(reply);
  });
}
