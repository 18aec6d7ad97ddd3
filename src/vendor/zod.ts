// zod as the node uses it; bundled into one file by `npm run build`
// (scripts/bundle-cli.mjs), as vendor/undici.ts: ~95 ES modules whose loading
// cost ~80 ms of every command that reads slapos.cfg (docs/performance.md).
export { z } from 'zod';
