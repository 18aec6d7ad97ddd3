// The exit-status table is shared vocabulary (src/util/exit-status.ts); what is
// CLI-only is CliError, which commands throw to stop with a message and a status.
import { Exit } from '../util/exit-status.js';

export { Exit };

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
