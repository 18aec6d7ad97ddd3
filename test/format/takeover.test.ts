// Taking over a node that the reference `slapos node format` (slapos.core 1.24)
// formatted: the node is rebuilt in a test namespace from the recorded data
// (test/fixtures/reference-node/), then our format runs on it with the
// reference's slapos.cfg. Nothing may be removed, renamed, re-owned or
// re-addressed; the live node must equal the recorded state.json apart from
// the additions listed here.
import test from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fixturesDir } from '../helpers/paths.js';
import { isRoot } from '../helpers/system.js';
import { recreateReferenceNode, type ReferenceNode } from '../helpers/reference-node.js';
import { diffStates, normaliseState, snapshotNode, type NodeState } from '../helpers/node-snapshot.js';
import { formatCli, type FormatEnv } from '../helpers/format.js';

const rootOnly = isRoot ? test.serial : test.skip;
const fixture = path.join(fixturesDir, 'reference-node');
const recorded = (): NodeState => normaliseState(JSON.parse(readFileSync(path.join(fixture, 'state.json'), 'utf8')) as NodeState);

/** formatCli's environment for a rebuilt node (the cgroup parent is ours: an addition). */
function envOf(node: ReferenceNode): FormatEnv {
  return { netns: node.netns, prefix: 'rf', dir: node.dir, cfg: node.cfg, cgroupParent: 'slapos' };
}

rootOnly('the rebuilt reference node equals the recorded state.json (the helpers agree with the capture)', async (t) => {
  const node = recreateReferenceNode(t);
  const differences = diffStates(recorded(), await snapshotNode(node));
  t.deepEqual(differences, [], JSON.stringify(differences));
});

void envOf;
void formatCli;

rootOnly('debug dry run', async (t) => {
  const node = recreateReferenceNode(t);
  const r = await formatCli(envOf(node), ['--dry-run', '--json']);
  t.log(r.status, r.stderr);
  t.log(JSON.stringify(JSON.parse(r.stdout).steps, null, 0));
  t.log(JSON.stringify(JSON.parse(r.stdout).computer, null, 0).slice(0, 3000));
  t.pass();
});
