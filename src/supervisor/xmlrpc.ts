// A minimal XML-RPC client over HTTP on a unix socket (supervisord's
// transport, dependencies.md §5): encode a call, parse the response with
// saxes, turn a <fault> into XmlRpcFault. Only what supervisord sends.
import { request } from 'node:http';
import { SaxesParser } from 'saxes';

export type XmlRpcValue = string | number | boolean | null | XmlRpcValue[] | { [key: string]: XmlRpcValue };

export class XmlRpcFault extends Error {
  constructor(
    readonly faultCode: number,
    readonly faultString: string,
  ) {
    super(`XML-RPC fault ${faultCode}: ${faultString}`);
    this.name = 'XmlRpcFault';
  }
}

/** The socket is missing, refuses connections, or the answer is not XML-RPC. */
export class XmlRpcTransportError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'XmlRpcTransportError';
  }
}

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function encodeValue(value: XmlRpcValue): string {
  if (value === null) return '<value><nil/></value>';
  if (typeof value === 'string') return `<value><string>${escapeXml(value)}</string></value>`;
  if (typeof value === 'boolean') return `<value><boolean>${value ? 1 : 0}</boolean></value>`;
  if (typeof value === 'number') {
    return Number.isInteger(value) ? `<value><int>${value}</int></value>` : `<value><double>${value}</double></value>`;
  }
  if (Array.isArray(value)) return `<value><array><data>${value.map(encodeValue).join('')}</data></array></value>`;
  const members = Object.entries(value).map(([name, v]) => `<member><name>${escapeXml(name)}</name>${encodeValue(v)}</member>`);
  return `<value><struct>${members.join('')}</struct></value>`;
}

export function encodeCall(method: string, params: readonly XmlRpcValue[]): string {
  const encoded = params.map((param) => `<param>${encodeValue(param)}</param>`).join('');
  return `<?xml version="1.0"?>\n<methodCall><methodName>${escapeXml(method)}</methodName><params>${encoded}</params></methodCall>`;
}

function scalar(tag: string, text: string): XmlRpcValue {
  switch (tag) {
    case 'int':
    case 'i4':
    case 'i8':
    case 'double':
      return Number(text.trim());
    case 'boolean':
      return text.trim() === '1';
    case 'nil':
      return null;
    default: // string, base64, dateTime.iso8601: kept as text
      return text;
  }
}

const SCALARS = new Set(['string', 'int', 'i4', 'i8', 'double', 'boolean', 'nil', 'base64', 'dateTime.iso8601']);

type Container = { kind: 'array'; items: XmlRpcValue[] } | { kind: 'struct'; members: Record<string, XmlRpcValue>; name: string };

/** Parses a methodResponse: the value of its param, or throws XmlRpcFault. */
export function decodeResponse(xml: string): XmlRpcValue {
  const parser = new SaxesParser();
  const values: { text: string; result?: XmlRpcValue }[] = [];
  const containers: Container[] = [];
  const results: XmlRpcValue[] = [];
  let fault = false;
  let inName = false;
  let name = '';
  const deliver = (value: XmlRpcValue) => {
    const container = containers[containers.length - 1];
    if (!container) results.push(value);
    else if (container.kind === 'array') container.items.push(value);
    else container.members[container.name] = value;
  };
  parser.on('opentag', (tag) => {
    switch (tag.name) {
      case 'value':
        values.push({ text: '' });
        break;
      case 'array':
        containers.push({ kind: 'array', items: [] });
        break;
      case 'struct':
        containers.push({ kind: 'struct', members: {}, name: '' });
        break;
      case 'name':
        inName = true;
        name = '';
        break;
      case 'fault':
        fault = true;
        break;
    }
  });
  parser.on('text', (text) => {
    if (inName) name += text;
    else if (values.length > 0) values[values.length - 1]!.text += text;
  });
  parser.on('closetag', (tag) => {
    const frame = values[values.length - 1];
    if (SCALARS.has(tag.name) && frame) {
      frame.result = scalar(tag.name, frame.text);
    } else if (tag.name === 'name') {
      inName = false;
      const container = containers[containers.length - 1];
      if (container?.kind === 'struct') container.name = name;
    } else if (tag.name === 'array' || tag.name === 'struct') {
      const container = containers.pop()!;
      if (frame) frame.result = container.kind === 'array' ? container.items : container.members;
    } else if (tag.name === 'value') {
      values.pop();
      deliver(frame?.result !== undefined ? frame.result : frame?.text ?? '');
    }
  });
  try {
    parser.write(xml).close();
  } catch (error) {
    throw new XmlRpcTransportError(`malformed XML-RPC response: ${(error as Error).message}`);
  }
  const [first] = results;
  if (fault) {
    const detail = (first ?? {}) as { faultCode?: number; faultString?: string };
    throw new XmlRpcFault(Number(detail.faultCode ?? 0), String(detail.faultString ?? ''));
  }
  if (first === undefined) throw new XmlRpcTransportError('XML-RPC response without a value');
  return first;
}

export interface XmlRpcOptions {
  socketPath: string;
  /** Milliseconds for the whole call. */
  timeout?: number;
}

export function xmlRpcCall(options: XmlRpcOptions, method: string, params: readonly XmlRpcValue[] = []): Promise<XmlRpcValue> {
  const body = encodeCall(method, params);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: options.socketPath,
        path: '/RPC2',
        method: 'POST',
        headers: { 'Content-Type': 'text/xml', 'Content-Length': Buffer.byteLength(body) },
        timeout: options.timeout ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200) {
            reject(new XmlRpcTransportError(`${options.socketPath}: HTTP ${res.statusCode} for ${method}: ${text.slice(0, 200)}`));
            return;
          }
          try {
            resolve(decodeResponse(text));
          } catch (error) {
            reject(error);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new XmlRpcTransportError(`${options.socketPath}: ${method} timed out`, 'ETIMEDOUT')));
    req.on('error', (error: NodeJS.ErrnoException) => {
      reject(error instanceof XmlRpcTransportError ? error : new XmlRpcTransportError(`${options.socketPath}: ${error.message}`, error.code));
    });
    req.end(body);
  });
}
