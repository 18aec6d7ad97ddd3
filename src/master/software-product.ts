// Software products ([slapproxy] software_product_list, slap-protocol.md §3):
// `slapos supply|request product.<name>` resolve <name> with
// GET /getSoftwareReleaseListFromSoftwareProduct, then use the first URL.
import type { FastifyInstance } from 'fastify';
import { dumps } from '../slap/marshal-encode.js';
import type { Authorize } from './authorize.js';

/**
 * The option's text → product reference → URL. As the reference
 * (`_generateSoftwareProductListFromString`): every non-empty line is
 * "<reference> <url>", split on its one space. Throws on any other line.
 */
export function parseSoftwareProductList(text: string): Map<string, string> {
  const products = new Map<string, string>();
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '') continue;
    const parts = line.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new Error(`line ${index + 1} "${line.slice(0, 80)}": expected "<product reference> <software release URL>" separated by one space`);
    }
    const [reference, url] = parts as [string, string];
    if (products.has(reference)) throw new Error(`product ${reference} is listed twice`);
    products.set(reference, url);
  }
  return products;
}

/**
 * What the endpoint answers: by reference, the product's URL (or an empty
 * list); by URL (the reference's proxy raises NotImplementedError), the URL
 * itself when a product names it, else an empty list. Exactly one of the two.
 */
export function productReleases(products: ReadonlyMap<string, string>, reference: string | undefined, url: string | undefined): string[] | string {
  if ((reference === undefined) === (url === undefined)) return 'give exactly one of software_product_reference and software_release_url';
  if (reference !== undefined) {
    const found = products.get(reference);
    return found === undefined ? [] : [found];
  }
  return [...products.values()].includes(url as string) ? [url as string] : [];
}

export function registerSoftwareProducts(app: FastifyInstance, products: ReadonlyMap<string, string>, authorize: Authorize): void {
  app.get('/getSoftwareReleaseListFromSoftwareProduct', async (request, reply) => {
    await authorize(request, { kind: 'user' });
    const q = request.query as Record<string, unknown>;
    const text = (key: string) => (typeof q[key] === 'string' && q[key] !== 'None' ? q[key] : undefined);
    const answer = productReleases(products, text('software_product_reference'), text('software_release_url'));
    if (typeof answer === 'string') return reply.code(400).type('text/plain; charset=utf-8').send(answer);
    return reply.type('text/xml; charset=utf-8').send(dumps(answer));
  });
}
