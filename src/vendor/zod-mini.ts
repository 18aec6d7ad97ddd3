// zod's mini API for the configuration schema (src/config): functions instead
// of methods, and only those the schema uses are exported, so the bundle keeps
// only them (~40 KB instead of zod's 755 KB, which every command that reads
// slapos.cfg compiled; docs/performance.md). Imported as a namespace
// (`import * as z`). The English messages are those of zod's classic API.
import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

config(en());

export { enum, NEVER, object, optional, pipe, prefault, string, transform } from 'zod/mini';
export type { output, ZodMiniObject, ZodMiniType } from 'zod/mini';
