// What the managers applied for each partition, in root-owned files
// (<instance_root>/var/managers/<partition>.json, never inside the
// partition): undo on destruction removes exactly this, and
// `slapos node status` shows it.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../partition/state.js';
import type { Redirect } from '../firewall/ruleset.js';

export interface Refusal {
  manager: string;
  reason: string;
}

export interface PartitionManagerState {
  partition: string;
  uid?: number;
  cpuset?: { cpus: number[]; pids: number[]; waiting: number[] };
  devperm?: { devices: string[] };
  portredir?: { redirects: Redirect[] };
  whitelistfirewall?: { addresses: string[] };
  firewall?: { addresses: string[]; mode: 'accept' | 'reject'; sources: string[] };
  /** Refusals of the last pass (hostile or mistaken requests), shown by status. */
  refused: Refusal[];
  updated: string;
}

export function stateDir(instanceRoot: string): string {
  return path.join(instanceRoot, 'var', 'managers');
}

const fileOf = (instanceRoot: string, id: string) => path.join(stateDir(instanceRoot), `${id}.json`);

export function readManagerState(instanceRoot: string, id: string): PartitionManagerState {
  try {
    const parsed = JSON.parse(readFileSync(fileOf(instanceRoot, id), 'utf8')) as PartitionManagerState;
    if (parsed && parsed.partition === id) return { ...parsed, refused: Array.isArray(parsed.refused) ? parsed.refused : [] };
  } catch { /* absent or damaged: nothing applied known */ }
  return { partition: id, refused: [], updated: '' };
}

export function writeManagerState(instanceRoot: string, state: PartitionManagerState): void {
  mkdirSync(stateDir(instanceRoot), { recursive: true, mode: 0o700 });
  writeFileAtomic(fileOf(instanceRoot, state.partition), `${JSON.stringify(state, null, 2)}\n`, 0o600);
}

export function removeManagerState(instanceRoot: string, id: string): void {
  rmSync(fileOf(instanceRoot, id), { force: true });
}

export function allManagerStates(instanceRoot: string): PartitionManagerState[] {
  let names: string[];
  try {
    names = readdirSync(stateDir(instanceRoot));
  } catch {
    return [];
  }
  return names.filter((n) => n.endsWith('.json') && n !== 'pools.json').sort().map((n) => readManagerState(instanceRoot, n.slice(0, -5)));
}
