// Reports the computer to the master as the reference does (slapformat.md §7):
// POST <master_url>/loadComputerConfigurationFromXML, form field `xml` = the
// marshalled computer dict. Temporary: the lead moves this to the shared SLAP
// client in src/slap at merge.
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { dumps, type MarshalValue } from './computer-xml.js';

export interface ReportTarget {
  masterUrl: string;
  keyFile?: string;
  certFile?: string;
  timeoutMs?: number;
}

/** application/x-www-form-urlencoded as Python's urlencode (quote_plus) writes it. */
export function formEncode(fields: Record<string, string>): string {
  const quote = (text: string) =>
    encodeURIComponent(text)
      .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
      .replaceAll('%20', '+');
  return Object.entries(fields).map(([k, v]) => `${quote(k)}=${quote(v)}`).join('&');
}

export class ReportError extends Error {
  override name = 'ReportError';
}

export async function reportComputer(target: ReportTarget, computer: MarshalValue): Promise<void> {
  const url = new URL(`${target.masterUrl.replace(/\/+$/, '')}/loadComputerConfigurationFromXML`);
  const body = formEncode({ xml: dumps(computer) });
  const isHttps = url.protocol === 'https:';
  const options: https.RequestOptions = {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body), 'User-Agent': 'slapos-node' },
    timeout: target.timeoutMs ?? 60_000,
  };
  if (isHttps) {
    if (target.keyFile) options.key = readFileSync(target.keyFile);
    if (target.certFile) options.cert = readFileSync(target.certFile);
    // As the reference (verify=False): the master is identified by configuration, not by its certificate.
    options.rejectUnauthorized = false;
  }
  await new Promise<void>((resolve, reject) => {
    const request = (isHttps ? https : http).request(url, options, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (c: Buffer) => chunks.push(c));
      response.on('end', () => {
        const status = response.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve();
        const hint = status === 404 ? ' (is computer_id right, and are key_file/cert_file the ones the master issued for it?)' : '';
        reject(new ReportError(`master ${url.origin} answered ${status} to loadComputerConfigurationFromXML${hint}`));
      });
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new ReportError(`master ${url.origin} did not answer within ${options.timeout} ms`)));
    request.on('error', (error) => reject(error instanceof ReportError ? error : new ReportError(`cannot reach the master at ${url.origin}: ${error.message}`)));
    request.end(body);
  });
}
