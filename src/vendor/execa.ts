// execa as the node uses it; bundled into one file by `npm run build`
// (scripts/bundle-cli.mjs), as vendor/undici.ts: ~130 ES modules whose loading
// cost ~70 ms of every instance pass, even a no-op one (docs/performance.md).
export { execa } from 'execa';
