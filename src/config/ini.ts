// A reader for slapos.cfg with the semantics of Python's configparser.ConfigParser
// (the reference reads it with that class), because the npm INI parsers get the
// continuation lines and `key: value` lines of real slapos.cfg files wrong
// (see ../shared/reference/dependencies.md §9):
//  - `[section]` headers; `=` or `:` delimiter (the first of either); keys
//    lower-cased and stripped; values stripped;
//  - full-line `#` / `;` comments (may be indented), no inline comments;
//  - continuation lines (indented deeper than their key) joined with "\n",
//    blank lines kept inside a value, trailing blank lines dropped;
//  - `[DEFAULT]` keys visible in every section;
//  - BasicInterpolation: `%(name)s` from the same section or DEFAULT, `%%`.
// Duplicate sections/keys, a line outside any section, and a line without a
// delimiter are errors, as with configparser's strict mode.

export class IniError extends Error {
  constructor(
    /** The problem, without the file name. */
    readonly reason: string,
    readonly file: string,
    readonly line?: number,
  ) {
    super(line === undefined ? `${file}: ${reason}` : `${file}:${line}: ${reason}`);
    this.name = 'IniError';
  }
}

/** Sections in file order; each maps lower-cased keys to raw (uninterpolated) values. */
export interface IniDocument {
  file: string;
  defaults: Map<string, string>;
  sections: Map<string, Map<string, string>>;
}

const SECTION = /^\[(?<name>[^\]]+)\]\s*$/;
const MAX_INTERPOLATION_DEPTH = 10;

export function parseIni(text: string, file = '<string>'): IniDocument {
  const defaults = new Map<string, string>();
  const sections = new Map<string, Map<string, string>>();
  let current: Map<string, string> | undefined;
  let currentName = '';
  // The option being read: its collected lines and the indentation of its key line.
  let option: { key: string; lines: string[]; indent: number } | undefined;

  const finishOption = () => {
    if (!option || !current) return;
    current.set(option.key, option.lines.join('\n').trimEnd());
    option = undefined;
  };

  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i] ?? '';
    const stripped = raw.trim();
    if (stripped.startsWith('#') || stripped.startsWith(';')) continue;
    if (stripped === '') {
      // Kept inside a multi-line value; trimmed at the end of the value.
      if (option) option.lines.push('');
      continue;
    }
    const indent = raw.length - raw.trimStart().length;
    if (option && indent > option.indent) {
      option.lines.push(stripped);
      continue;
    }
    finishOption();
    const header = SECTION.exec(stripped);
    if (header && indent === 0) {
      const name = header.groups?.name ?? '';
      if (name === 'DEFAULT') {
        current = defaults;
      } else {
        if (sections.has(name)) throw new IniError(`section [${name}] appears twice`, file, lineNo);
        current = new Map();
        sections.set(name, current);
      }
      currentName = name;
      continue;
    }
    if (!current) throw new IniError(`line outside any [section]: ${JSON.stringify(stripped)}`, file, lineNo);
    const at = firstDelimiter(stripped);
    if (at <= 0) throw new IniError(`expected "key = value" in [${currentName}], got ${JSON.stringify(stripped)}`, file, lineNo);
    const key = stripped.slice(0, at).trim().toLowerCase();
    if (current.has(key)) throw new IniError(`key "${key}" appears twice in [${currentName}]`, file, lineNo);
    option = { key, lines: [stripped.slice(at + 1).trim()], indent };
  }
  finishOption();
  return { file, defaults, sections };
}

function firstDelimiter(line: string): number {
  const eq = line.indexOf('=');
  const colon = line.indexOf(':');
  if (eq < 0) return colon;
  if (colon < 0) return eq;
  return Math.min(eq, colon);
}

/** One section with DEFAULT merged in and `%(name)s` interpolated. */
export function sectionValues(doc: IniDocument, name: string): Map<string, string> | undefined {
  const own = doc.sections.get(name);
  if (!own) return undefined;
  const merged = new Map([...doc.defaults, ...own]);
  const out = new Map<string, string>();
  for (const [key, value] of merged) out.set(key, interpolate(doc, name, merged, key, value, 0));
  return out;
}

function interpolate(
  doc: IniDocument,
  section: string,
  values: Map<string, string>,
  key: string,
  value: string,
  depth: number,
): string {
  if (depth > MAX_INTERPOLATION_DEPTH) {
    throw new IniError(`[${section}] ${key}: interpolation deeper than ${MAX_INTERPOLATION_DEPTH} levels (a loop?)`, doc.file);
  }
  let out = '';
  for (let i = 0; i < value.length; ) {
    const pct = value.indexOf('%', i);
    if (pct < 0) {
      out += value.slice(i);
      break;
    }
    out += value.slice(i, pct);
    const next = value[pct + 1];
    if (next === '%') {
      out += '%';
      i = pct + 2;
      continue;
    }
    const ref = /^%\(([^)]+)\)s/.exec(value.slice(pct));
    if (!ref) {
      throw new IniError(`[${section}] ${key}: "%" must be followed by "%" or "(name)s" (write %% for a literal %)`, doc.file);
    }
    const refKey = (ref[1] ?? '').toLowerCase();
    const refValue = values.get(refKey);
    if (refValue === undefined) {
      throw new IniError(`[${section}] ${key}: refers to %(${refKey})s, which is not set in [${section}] or [DEFAULT]`, doc.file);
    }
    out += interpolate(doc, section, values, refKey, refValue, depth + 1);
    i = pct + ref[0].length;
  }
  return out;
}
