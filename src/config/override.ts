// Command-line values that stand in for slapos.cfg keys (the reference's
// slapgrid options --master-url, --software-root, …): checked with the same
// types as the file, so a bad value is refused as a bad key would be.
import type * as z from '../vendor/zod-mini.js';
import { ConfigError, type SlaposConfig } from './load.js';
import { SECTIONS, type SectionName } from './schema.js';

/**
 * A copy of `config` whose `section` has `values` (raw strings, as in the file)
 * instead of its own; `origin` names where each value came from (an option) in errors.
 */
export function overrideKeys(config: SlaposConfig, section: SectionName, values: Record<string, string>, origin: (key: string) => string): SlaposConfig {
  const shape = (SECTIONS[section] as z.ZodMiniObject).shape as Record<string, z.ZodMiniType>;
  const typed: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    const schema = shape[key];
    if (!schema) throw new Error(`[${section}] ${key} is not a configuration key`);
    const result = schema.safeParse(value);
    if (!result.success) throw new ConfigError(`${origin(key)}: ${result.error.issues[0]?.message ?? 'invalid'}`, config.file, section, key);
    typed[key] = result.data;
  }
  return { ...config, [section]: { ...config[section], ...typed } };
}
