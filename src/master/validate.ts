// Input checks for every reference the master stores or looks up, and the
// domain error that carries the HTTP status (404 unknown, 400 invalid, 403 forbidden, 408 not ready).

export class MasterError extends Error {
  override name = 'MasterError';
  constructor(
    readonly status: 400 | 403 | 404 | 408 | 409 | 413 | 507,
    message: string,
  ) {
    super(message);
  }
}

export const notFound = (message: string) => new MasterError(404, message);
export const badRequest = (message: string) => new MasterError(400, message);

const ID = /^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const show = (value: string) => JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);

/** Computer ids and partition ids: short, no spaces, no path or markup characters. */
export function checkId(kind: string, value: string | undefined): string {
  if (value === undefined || value === '') throw badRequest(`missing ${kind}`);
  if (!ID.test(value)) throw badRequest(`invalid ${kind} ${show(value)}`);
  return value;
}

/** Instance titles: free text (as SlapOS allows), but non-empty, bounded and printable. */
export function checkTitle(kind: string, value: string | undefined): string {
  if (value === undefined || value.trim() === '') throw badRequest(`missing ${kind}`);
  if (value.length > 200 || CONTROL.test(value)) throw badRequest(`invalid ${kind} ${show(value)}`);
  return value;
}

/** Software release URLs (or local paths): non-empty, bounded, no whitespace or control characters. */
export function checkUrl(value: string | undefined): string {
  if (value === undefined || value === '') throw badRequest('missing software release url');
  if (value.length > 2048 || /\s/.test(value) || CONTROL.test(value)) throw badRequest(`invalid software release url ${show(value)}`);
  return value;
}

export function checkChoice<T extends string>(kind: string, value: string | undefined, choices: readonly T[]): T {
  if (value === undefined || !(choices as readonly string[]).includes(value)) {
    throw badRequest(`${kind} must be one of ${choices.join(', ')}, not ${show(value ?? '')}`);
  }
  return value as T;
}

/** Free text such as error logs and messages: bounded. */
export function checkText(kind: string, value: string | undefined, max = 1024 * 1024): string {
  const text = value ?? '';
  if (text.length > max) throw badRequest(`${kind} longer than ${max} characters`);
  return text;
}
