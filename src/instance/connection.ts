// The connection parameters an instance publishes through its partition's
// .slapos-connection.json (docs/instance.md). Pure parsing and comparison.

/** Reserved key: per-slave parameters, `{ "<slave_reference>": { … } }`. */
export const SLAVES_KEY = '_slaves';

export interface ConnectionParameters {
  own: Record<string, string>;
  slaves: Record<string, Record<string, string>>;
}

export class ConnectionFileError extends Error {
  override name = 'ConnectionFileError';
}

// The master stores connection parameters as strings (instance XML).
const asText = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));

function flat(value: unknown, where: string): Record<string, string> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ConnectionFileError(`${where} must be a JSON object`);
  return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, asText(v)]));
}

export function parseConnectionFile(text: string, file: string): ConnectionParameters {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ConnectionFileError(`${file}: not JSON: ${(error as Error).message}`);
  }
  const all = flat(data, file);
  const slavesValue = (data as Record<string, unknown>)[SLAVES_KEY];
  delete all[SLAVES_KEY];
  const slaves: Record<string, Record<string, string>> = {};
  if (slavesValue !== undefined) {
    const map = slavesValue as Record<string, unknown>;
    if (map === null || typeof map !== 'object' || Array.isArray(map)) throw new ConnectionFileError(`${file}: "${SLAVES_KEY}" must be an object of slave references`);
    for (const [reference, params] of Object.entries(map)) slaves[reference] = flat(params, `${file}: "${SLAVES_KEY}"."${reference}"`);
  }
  return { own: all, slaves };
}

/** Same keys and values (the master's copy comes as strings too). */
export function sameParameters(a: Record<string, unknown> | null | undefined, b: Record<string, string>): boolean {
  const left = Object.entries(a ?? {});
  if (left.length !== Object.keys(b).length) return false;
  return left.every(([k, v]) => Object.hasOwn(b, k) && asText(v) === b[k]);
}
