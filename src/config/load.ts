// Finding, reading and validating slapos.cfg into typed sections.
import { readFileSync } from 'node:fs';
import type * as z from '../vendor/zod-mini.js';
import { IniError, parseIni, sectionValues, type IniDocument } from './ini.js';
import { ignoredHint } from './suggest.js';
import {
  ALIASES, DEPRECATED, SECTIONS, type DaemonSection, type NetworkcacheSection, type SectionName, type SlaposSection,
  type SlapformatSection, type SlapproxySection,
} from './schema.js';

export const DEFAULT_CONFIG_PATH = '/etc/opt/slapos/slapos.cfg';

/** A configuration problem: exit status 1, one message naming the file and the key. */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly section?: string,
    readonly key?: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface SlaposConfig {
  file: string;
  slapos: SlaposSection;
  slapformat: SlapformatSection;
  networkcache: NetworkcacheSection;
  slapproxy: SlapproxySection;
  daemon: DaemonSection;
  /** Which sections the file has (the others hold only defaults). */
  present: ReadonlySet<string>;
  /** Raw values of every section, for sections we do not type ([manager:*], [firewall], …). */
  raw: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** "[section] key" of keys we do not know, to warn about. */
  unknownKeys: string[];
  /** Sections we do not know (a typo such as [slapfromat] would otherwise pass silently). */
  unknownSections: string[];
  /**
   * [slapformat] keys set in [slapos], typed. The reference merges both
   * sections and [slapos] wins (slapformat.md §2.1): format applies these over
   * [slapformat] and warns. They are not unknown keys.
   */
  slapformatOverrides: Partial<SlapformatSection>;
}

/** --cfg, else $SLAPOS_CONFIGURATION, else /etc/opt/slapos/slapos.cfg (as the reference). */
export function configPath(cliPath: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return cliPath ?? env.SLAPOS_CONFIGURATION ?? DEFAULT_CONFIG_PATH;
}

/**
 * Sections read from slapos.cfg besides the typed ones: [collect] (accounting),
 * [firewall] and [slapconsole] (reference), and the families [manager:<name>]
 * (reference managers) and [multimaster/<url>] (master forwarding).
 */
export const OTHER_SECTIONS = ['collect', 'firewall', 'slapconsole'] as const;
const SECTION_PREFIXES = ['manager:', 'multimaster/'] as const;

export function isKnownSection(name: string): boolean {
  return name in SECTIONS || (OTHER_SECTIONS as readonly string[]).includes(name) || SECTION_PREFIXES.some((p) => name.startsWith(p));
}

/**
 * One line per unknown section and key, with the closest known name when it
 * looks like a typo. Keys of sections we do not know are not listed again.
 */
export function configWarnings(config: SlaposConfig): string[] {
  const sectionNames = [...Object.keys(SECTIONS), ...OTHER_SECTIONS];
  // [collect] keys are checked where they are read (src/accounting/settings.ts).
  const warnings = config.unknownSections.map((name) =>
    `${config.file}: unknown section [${name}]${ignoredHint(name, sectionNames, (n) => `[${n}]`)}`);
  for (const entry of config.unknownKeys) {
    const [, section = '', key = ''] = /^\[([^\]]*)\] (.*)$/.exec(entry) ?? [];
    const schema = (SECTIONS as Record<string, z.ZodMiniObject | undefined>)[section];
    warnings.push(`${config.file}: unknown key ${entry}${ignoredHint(key, Object.keys(schema?.shape ?? {}))}`);
  }
  return warnings;
}

/**
 * Reads and validates `file`. `envVariable` is the variable that names the
 * file for the command at hand ($SLAPOS_CLIENT_CONFIGURATION for the client
 * commands), named in the error when the file is missing.
 */
export function loadConfig(file: string, envVariable = 'SLAPOS_CONFIGURATION'): SlaposConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? `no such file (give one with --cfg or $${envVariable})` : String(error);
    throw new ConfigError(`cannot read configuration: ${why}`, file);
  }
  return parseConfig(text, file);
}

export function parseConfig(text: string, file: string): SlaposConfig {
  let doc: IniDocument;
  try {
    doc = parseIni(text, file);
  } catch (error) {
    if (error instanceof IniError) throw new ConfigError(error.line ? `line ${error.line}: ${error.reason}` : error.reason, file);
    throw error;
  }
  const raw = new Map<string, Map<string, string>>();
  const unknownKeys: string[] = [];
  const overrides: Record<string, string> = {};
  const typed: Partial<Record<SectionName, unknown>> = {};
  for (const name of doc.sections.keys()) {
    try {
      raw.set(name, sectionValues(doc, name) ?? new Map());
    } catch (error) {
      if (error instanceof IniError) throw new ConfigError(error.reason, file, name);
      throw error;
    }
  }
  for (const name of Object.keys(SECTIONS) as SectionName[]) {
    const values = normalise(name, raw.get(name) ?? new Map(), file);
    const schema = SECTIONS[name] as z.ZodMiniObject;
    const known = new Set(Object.keys(schema.shape));
    const input: Record<string, string> = {};
    for (const [key, value] of values) {
      if (known.has(key)) input[key] = value;
      else if (name === 'slapos' && key in SECTIONS.slapformat.shape && doc.sections.get('slapos')?.has(key)) overrides[key] = value;
      else if (!doc.defaults.has(key)) unknownKeys.push(`[${name}] ${key}`);
    }
    const result = schema.safeParse(input);
    if (!result.success) {
      const issue = result.error.issues[0];
      const key = String(issue?.path[0] ?? '');
      throw new ConfigError(`[${name}] ${key}: ${issue?.message ?? 'invalid'}`, file, name, key);
    }
    typed[name] = result.data;
  }
  return {
    file,
    slapformatOverrides: parseOverrides(overrides, file),
    slapos: typed.slapos as SlaposSection,
    slapformat: typed.slapformat as SlapformatSection,
    networkcache: typed.networkcache as NetworkcacheSection,
    slapproxy: typed.slapproxy as SlapproxySection,
    daemon: typed.daemon as DaemonSection,
    present: new Set(doc.sections.keys()),
    raw,
    unknownKeys,
    unknownSections: [...doc.sections.keys()].filter((name) => !isKnownSection(name)),
  };
}

/** [slapformat] keys found in [slapos], checked with [slapformat]'s types; errors name [slapos]. */
function parseOverrides(values: Record<string, string>, file: string): Partial<SlapformatSection> {
  const shape = SECTIONS.slapformat.shape as Record<string, z.ZodMiniType>;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    const result = (shape[key] as z.ZodMiniType).safeParse(value);
    if (!result.success) throw new ConfigError(`[slapos] ${key}: ${result.error.issues[0]?.message ?? 'invalid'}`, file, 'slapos', key);
    out[key] = result.data;
  }
  return out as Partial<SlapformatSection>;
}

function normalise(section: string, values: Map<string, string>, file: string): Map<string, string> {
  const out = new Map<string, string>();
  const aliases = ALIASES[section] ?? {};
  const deprecated = DEPRECATED[section] ?? {};
  for (const [key, value] of values) {
    if (key in deprecated && value.trim() !== '' && value.trim().toLowerCase() !== 'false') {
      throw new ConfigError(`[${section}] ${key}: no longer supported: ${deprecated[key]}`, file, section, key);
    }
    if (key in deprecated) continue;
    out.set(aliases[key] ?? key, value);
  }
  return out;
}

type Required<S extends SectionName> = keyof SlaposConfig[S] & string;

/**
 * Checks that keys a command cannot work without are set, and narrows their
 * type. The error names every missing key, the section and the file.
 */
export function requireKeys<S extends SectionName, K extends Required<S>>(
  config: SlaposConfig,
  section: S,
  keys: readonly K[],
): SlaposConfig[S] & { [P in K]-?: NonNullable<SlaposConfig[S][P]> } {
  const values = config[section] as Record<string, unknown>;
  const missing = keys.filter((key) => values[key] === undefined || values[key] === '');
  if (missing.length > 0) {
    const what = missing.map((key) => `[${section}] ${key}`).join(', ');
    throw new ConfigError(`missing required ${missing.length === 1 ? 'key' : 'keys'} ${what}`, config.file, section, missing[0]);
  }
  return config[section] as SlaposConfig[S] & { [P in K]-?: NonNullable<SlaposConfig[S][P]> };
}
