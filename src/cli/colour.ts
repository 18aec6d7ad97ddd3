// Colour on a terminal only: never when stdout is a pipe or a file, never with
// NO_COLOR set (https://no-color.org) or TERM=dumb. The words stay as they are,
// so nothing depends on the colour.
import { styleText as nodeStyleText } from 'node:util';

// Whether to colour is decided here (colourEnabled); newer Node versions would check the stream again.
const styleText = (style: string, text: string): string =>
  (nodeStyleText as unknown as (s: string, t: string, o: { validateStream: boolean }) => string)(style, text, { validateStream: false });

export function colourEnabled(stream: { isTTY?: boolean } = process.stdout, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(stream.isTTY) && env.NO_COLOR === undefined && env.TERM !== 'dumb';
}

type Style = 'red' | 'green' | 'yellow' | 'bold' | 'dim';

/** `text` in `style` when colour is on. */
export const paint = (on: boolean, style: Style, text: string): string => (on ? styleText(style, text) : text);

/** Colours the state words of `slapos node status` (FAILED, error, ok, running, …) when `on`. */
export function colourStates(text: string, on: boolean): string {
  if (!on) return text;
  return text
    .replace(/\b(FAILED|FATAL|BACKOFF|EXITED|error|failed|unreachable)\b/g, (w) => styleText('red', w))
    .replace(/\b(ok|RUNNING|started|available)\b/g, (w) => styleText('green', w))
    .replace(/\b(STARTING|STOPPING|building|backoff)\b/g, (w) => styleText('yellow', w));
}
