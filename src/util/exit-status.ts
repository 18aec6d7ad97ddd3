// Exit statuses, as the reference's (slapgrid.md §9, slapformat.md §1): shared
// vocabulary, not CLI code. The loops return them as their outcome (the
// reference's processes are judged by them: systemd, the boot sequence reading
// format's status, operators' scripts); src/cli sets process.exitCode from them.
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

/** Options that cannot go together, or that name nothing (e.g. an unknown --only-cp): the CLI prints the message, status 1. */
export class UsageError extends Error {
  override name = 'UsageError';
}
