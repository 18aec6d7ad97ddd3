// The next step after a command a newcomer runs (format, supply, software): one
// line for a person at a terminal, never in --json nor in a pipe, where a script
// reads the output and would not expect it.
import { colourEnabled, paint } from './colour.js';

export interface HintTarget {
  isTTY?: boolean;
}

/** The hint line to print, or undefined when it must not be printed. */
export function nextStepLine(text: string, options: { json: boolean; stream: HintTarget; env?: NodeJS.ProcessEnv }): string | undefined {
  if (options.json || !options.stream.isTTY) return undefined;
  return paint(colourEnabled(options.stream, options.env ?? process.env), 'dim', `next: ${text}`);
}
