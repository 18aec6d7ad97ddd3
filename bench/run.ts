// npm run bench -- <name>: runs bench/<name>.ts.
const benches: Record<string, () => Promise<unknown>> = {
  format: async () => (await import('./format.js')).main(process.argv.slice(3)),
  instance: async () => (await import('./instance.js')).main(process.argv.slice(3)),
};
const name = process.argv[2] ?? '';
const bench = benches[name];
if (!bench) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}>`);
  process.exitCode = 1;
} else {
  await bench();
}
