// `node dist/bench/profile-summary.js <file.cpuprofile>`: self time per file
// (node_modules grouped by package) of a V8 CPU profile, largest first.
import { readFileSync } from 'node:fs';

interface Profile { nodes: Array<{ id: number; callFrame: { url: string; functionName: string } }>; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node dist/bench/profile-summary.js <file.cpuprofile> [top]\n');
  process.exit(2);
}
const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const self = new Map<string, number>();
p.samples.forEach((id, i) => {
  const frame = byId.get(id)!.callFrame;
  const where = (frame.url || frame.functionName).replace(/^file:\/\/.*?\/node_modules\/((?:@[^/]+\/)?[^/]+)\/.*$/, 'npm:$1').replace(/^file:\/\/.*?\/dist\//, 'dist/');
  self.set(where, (self.get(where) ?? 0) + (p.timeDeltas[i] ?? 0));
});
console.log(`profile ${((p.endTime - p.startTime) / 1000).toFixed(0)} ms`);
for (const [where, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[3] ?? 25))) console.log(`${(us / 1000).toFixed(1).padStart(8)} ms  ${where}`);
