// Which Python runs a partition's plugin promises (plugin-promises.md §2):
// the interpreter of the software release's `bin/buildout` — its shebang, or
// the `exec <python>` line of a `#!/bin/sh` wrapper (zc.buildout writes one
// when the path is too long for a shebang). Without one, the machine's
// python3: the reference then runs the promises in its own process, with its
// own Python; ours is /usr/bin/python3, and the plugin's sys.path still
// brings the release's eggs (an egg built for another Python fails to import,
// which is a failed promise, never a crashed node).
import { lstatSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { readTextNoFollow } from '../partition/state.js';

/** The machine's interpreter when the release names none (Debian's, not whatever is first on PATH). */
export const FALLBACK_PYTHON = '/usr/bin/python3';

/** bin/buildout is a few KB; more is not a buildout script. */
const SCRIPT_MAX_BYTES = 256 * 1024;

/** Splits a shell-ish word list, honouring "double" and 'single' quotes (enough for buildout's wrappers). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) words.push(m[1] ?? m[2] ?? m[3] ?? '');
  return words;
}

/**
 * Pure: the interpreter named by a `bin/buildout` script, or undefined. The
 * first line's shebang; when that is /bin/sh, the first following line that
 * starts (after quotes) with `exec`, whose next word is the interpreter —
 * zc.buildout's long-shebang form is `"exec" "/path/python" "$0" "$@"` or
 * `'''exec' /path/python "$0" "$@" # '''`.
 */
export function interpreterFromScript(text: string): string | undefined {
  const lines = text.split('\n');
  const first = lines[0] ?? '';
  if (!first.startsWith('#!')) return undefined;
  const shebang = first.slice(2).trim().split(/\s+/)[0] ?? '';
  if (shebang !== '/bin/sh' && shebang !== '/usr/bin/sh') return path.isAbsolute(shebang) ? shebang : undefined;
  for (const line of lines.slice(1, 20)) {
    const trimmed = line.trim();
    const words = shellWords(trimmed.startsWith("'''") ? trimmed.slice(2) : trimmed);
    if (words[0] !== 'exec') continue;
    const python = words[1];
    return python !== undefined && path.isAbsolute(python) ? python : undefined;
  }
  return undefined;
}

/**
 * The release of a partition from its `software_release` link (the instance
 * loop makes it), accepted only when it names a direct child of the software
 * root: the partition owns that link and could point it anywhere.
 */
export function softwarePathOfPartition(partitionPath: string, softwareRoot: string): string | undefined {
  const link = path.join(partitionPath, 'software_release');
  try {
    if (!lstatSync(link).isSymbolicLink()) return undefined;
    const target = path.resolve(partitionPath, readlinkSync(link));
    const root = path.resolve(softwareRoot);
    if (path.dirname(target) !== root || ['.', '..', ''].includes(path.basename(target))) return undefined;
    return target;
  } catch {
    return undefined;
  }
}

export interface PluginPython {
  python: string;
  /** release: named by the release's bin/buildout; fallback: FALLBACK_PYTHON (why says why). */
  source: 'release' | 'fallback';
  why?: string | undefined;
}

/** The interpreter for the plugin promises of a release (undefined release: fallback). */
export function pluginPython(softwarePath: string | undefined): PluginPython {
  if (softwarePath === undefined) return { python: FALLBACK_PYTHON, source: 'fallback', why: 'the partition\'s software release is not known' };
  const script = path.join(softwarePath, 'bin', 'buildout');
  let text: string | undefined;
  try {
    text = readTextNoFollow(script, SCRIPT_MAX_BYTES, softwarePath); // beneath the release: no link in bin/ either
  } catch (error) {
    return { python: FALLBACK_PYTHON, source: 'fallback', why: `${script}: ${(error as Error).message}` };
  }
  if (text === undefined) return { python: FALLBACK_PYTHON, source: 'fallback', why: `${script} does not exist` };
  const python = interpreterFromScript(text);
  if (python === undefined) return { python: FALLBACK_PYTHON, source: 'fallback', why: `${script} names no interpreter` };
  try {
    if (!statSync(python).isFile()) throw new Error('not a file');
  } catch {
    return { python: FALLBACK_PYTHON, source: 'fallback', why: `${python} (named by ${script}) is not a file` };
  }
  return { python, source: 'release' };
}
