// zod (classic API) as the master's JSON API uses it; bundled into one file by `npm run build`
// (scripts/bundle-cli.mjs), as vendor/undici.ts: ~95 ES modules whose loading
// cost ~80 ms (docs/performance.md). The configuration uses zod's mini API (zod-mini.ts).
export { z } from 'zod';
