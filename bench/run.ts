// `npm run bench -- <name> [options]`: runs one benchmark. Add an entry to add one.
import { register } from 'node:module';

// Benchmarks reuse test helpers, which import ava: give them a stand-in (bench/ava-stub.ts).
register('./ava-stub-hook.js', import.meta.url);
const BENCHES: Record<string, () => Promise<{ main(args: string[]): Promise<void> }>> = {
  startup: () => import('./startup.js'),
  collect: () => import('./collect.js'),
  format: () => import('./format.js'),
  instance: () => import('./instance.js'),
  buildout: () => import('./buildout.js'),
  master: () => import('./master.js'),
  fleet: () => import('./fleet.js'),
  'master-scale': () => import('./master-scale.js'),
  'master-tx': () => import('./master-tx.js'),
  'node-scale': () => import('./node-scale.js'),
  portredir: () => import('./portredir.js'),
  'web-chart': () => import('./web-chart.js'),
  'random-kill': () => import('./random-kill.js'),
};

const [name, ...args] = process.argv.slice(2);
const load = name ? BENCHES[name] : undefined;
if (!load) {
  process.stderr.write(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [options]\n`);
  process.exit(2);
}
await (await load()).main(args);
