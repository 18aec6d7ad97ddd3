// A throw-away node for accounting tests: instance_root with formatted
// partitions, a test-only cgroup parent (removed at teardown, even after a
// failure), and the settings collect/report read.
import type { ExecutionContext } from 'ava';
import { chmodSync, chownSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { CgroupTree } from '../../src/cgroup/group.js';
import { detectLayout, type CgroupLayout } from '../../src/cgroup/layout.js';
import { collectSection } from '../../src/config/schema.js';
import type { AccountingSettings } from '../../src/accounting/settings.js';
import { hardwareStatusPath } from '../../src/accounting/settings.js';
import { tempDir, testName, type TestUser } from '../helpers/system.js';

export const log = pino({ level: 'silent' });

export interface TestNode {
  dir: string;
  instanceRoot: string;
  settings: AccountingSettings;
  tree: CgroupTree;
  partitionPath(id: string): string;
}

export async function cleanupTree(tree: CgroupTree, groups: readonly string[]): Promise<void> {
  for (const group of groups) {
    if (!tree.exists(group)) continue;
    for (let i = 0; i < 100; i++) {
      const pids = tree.processes(group);
      if (pids.length === 0) break;
      for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      await new Promise((r) => setTimeout(r, 20));
    }
    // An exited process keeps a cgroup2 group busy until its parent reaps it: retry.
    for (let i = 0; ; i++) {
      try {
        tree.remove(group);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EBUSY' || i >= 100) throw error;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }
  tree.removeParent();
}

export function makeNode(
  t: ExecutionContext, partitions: Array<{ id: string; user?: TestUser; tap?: string }>, layout: CgroupLayout = detectLayout(),
  collect: Record<string, string> = {},
): TestNode {
  const dir = tempDir(t, 'slapos-acct-');
  chmodSync(dir, 0o755);
  const instanceRoot = path.join(dir, 'srv');
  mkdirSync(instanceRoot, { mode: 0o755 });
  for (const p of partitions) {
    const pdir = path.join(instanceRoot, p.id);
    mkdirSync(pdir, { mode: 0o750 });
    // Written for releases, never read back by the node: it lies here on purpose.
    writeFileSync(path.join(pdir, '.slapos-resource'), JSON.stringify({ reference: p.id, user: { name: 'root' }, tap: { name: 'lo' } }));
    if (p.user) chownSync(pdir, p.user.uid, p.user.gid);
  }
  // Format's root-owned state (computer_json) is where identity comes from.
  const stateJson = path.join(dir, 'slapos.json');
  writeFileSync(stateJson, JSON.stringify({
    reference: 'COMP-1234',
    partition_list: partitions.map((p) => ({ reference: p.id, path: path.join(instanceRoot, p.id), user: { name: p.user?.name ?? 'nobody-here' }, tap: { name: p.tap ?? '' } })),
  }));
  const parent = testName('slapos-test-');
  const tree = new CgroupTree(layout, parent);
  t.teardown(() => cleanupTree(tree, partitions.map((p) => p.id)));
  for (const p of partitions) tree.create(p.id);
  const settings: AccountingSettings = {
    computerId: 'COMP-1234', instanceRoot, cgroupParent: parent, certificateRepository: undefined, retentionDays: 15,
    collect: collectSection.parse(collect), hardwareStatusFile: hardwareStatusPath(instanceRoot),
    naming: { partitionBaseName: 'slappart', userBaseName: 'slapuser', tapBaseName: 'slaptap' },
    formatState: { xml: path.join(dir, 'slapos.xml'), json: stateJson },
  };
  return { dir, instanceRoot, settings, tree, partitionPath: (id) => path.join(instanceRoot, id) };
}
