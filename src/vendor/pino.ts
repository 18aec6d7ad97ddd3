// pino as the node uses it; bundled into one file by `npm run build`
// (scripts/bundle-cli.mjs), as vendor/undici.ts: pino and its ~30 CommonJS
// files, which every command that logs loaded (and Node scanned for their
// exports) one by one (docs/performance.md). No transport is used (they load
// worker files by path, which a bundle would not find).
export { pino } from 'pino';
