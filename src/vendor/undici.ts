// undici as the node uses it. `npm run build` (scripts/bundle-cli.mjs)
// replaces the compiled file with a one-file bundle of these exports: undici
// is ~520 CommonJS files, whose loading cost ~70 ms of every command that
// talks to the master (docs/performance.md). After a plain `tsc` this file is
// the plain re-export again: same API, slower start.
import './wasm-baseline.js'; // before undici compiles llhttp
export { Agent, request } from 'undici';
export type { Dispatcher } from 'undici';
