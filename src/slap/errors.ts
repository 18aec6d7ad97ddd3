// Errors of the SLAP protocol layer. Each names what failed and why, so a
// caller can map it to an HTTP status (master) or an exit status (node, CLI).

/** A value cannot be marshalled (e.g. a control character in a string). */
export class MarshalError extends Error {
  override name = 'MarshalError';
}

/** Input XML is malformed, hostile (DOCTYPE, entities) or over a limit. */
export class XmlInputError extends Error {
  override name = 'XmlInputError';
}

/** The master answered with a non-2xx status. */
export class SlapHttpError extends Error {
  override name = 'SlapHttpError';
  constructor(
    readonly endpoint: string,
    readonly status: number,
    readonly body: string,
  ) {
    super(`${endpoint}: master answered HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ''}`);
  }
}

/** 404 from the master: unknown computer/partition, or nothing allocatable. */
export class SlapNotFoundError extends SlapHttpError {
  override name = 'SlapNotFoundError';
}

/** 408 from the master: the request is accepted but the instance is not allocated yet. */
export class SlapNotReadyError extends SlapHttpError {
  override name = 'SlapNotReadyError';
}

/** The master could not be reached at all (refused, DNS, timeout, TLS). */
export class MasterUnreachableError extends Error {
  override name = 'MasterUnreachableError';
  constructor(
    readonly endpoint: string,
    readonly masterUrl: string,
    override readonly cause: unknown,
  ) {
    super(`${endpoint}: master ${masterUrl} unreachable: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** The master answered 2xx but the body is not what the protocol says. */
export class SlapProtocolError extends Error {
  override name = 'SlapProtocolError';
  constructor(
    readonly endpoint: string,
    message: string,
  ) {
    super(`${endpoint}: ${message}`);
  }
}
