// Exit statuses, as the reference's (slapgrid.md §9, slapformat.md §1).
export const Exit = {
  SUCCESS: 0,
  /** failure, bad configuration, usage error */
  FAILURE: 1,
  /** format: done but the master was unreachable; instance/promise: promise failures */
  OFFLINE_OR_PROMISE: 2,
  /** instance: master unreachable, processes restarted offline */
  OFFLINE_SUCCESS: 3,
  /** not root, or unknown sub-command */
  NOT_ROOT: 5,
  /** another run of the same loop holds the pid file */
  ALREADY_RUNNING: 10,
} as const;

/** Thrown by a command to stop with a message and a status (no stack trace shown). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = Exit.FAILURE,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
