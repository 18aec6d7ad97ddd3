// A partition's process group in the node's supervisord: its file in
// etc/supervisord.conf.d, and the XML-RPC calls that apply file changes,
// start and stop it (slapgrid.md §4.5–4.6).
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeIfChangedBeneath } from '../safe-fs/index.js';
import type { Logger } from '../util/log.js';
import { SupervisorClient, SupervisorFault } from './client.js';

/** Faults that mean "there is no such group" (already gone, never added). */
const isBadName = (error: unknown) => error instanceof SupervisorFault && error.faultName === 'BAD_NAME';

/**
 * Writes `<group>.conf` (0600, only when it differs) and deletes the other
 * files of this partition (`<group>-*.conf` of managers are kept: we write
 * none). `text` undefined = no program: the file goes. Resolves to whether
 * anything changed on disk.
 */
export function writeGroupFile(includeDir: string, group: string, text: string | undefined): boolean {
  if (text !== undefined) return writeIfChangedBeneath(includeDir, `${group}.conf`, text, { mode: 0o600 });
  return removeGroupFile(includeDir, group);
}

export function removeGroupFile(includeDir: string, group: string): boolean {
  const file = path.join(includeDir, `${group}.conf`);
  try {
    rmSync(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

export function groupFileNames(includeDir: string): string[] {
  try {
    return readdirSync(includeDir).filter((name) => name.endsWith('.conf')).map((name) => name.slice(0, -5));
  } catch {
    return [];
  }
}

async function stopAndRemove(client: SupervisorClient, group: string, log: Logger): Promise<void> {
  try {
    const results = await client.stopProcessGroup(group, true);
    for (const r of results) if (r.status === 30) log.warn({ code: 'SUPERVISOR_STOP_FAILED', program: `${r.group}:${r.name}`, description: r.description }, 'supervisord could not stop a program');
  } catch (error) {
    if (!isBadName(error)) throw error;
  }
  // supervisord refuses to remove a group whose processes are still stopping.
  for (let attempt = 1; ; attempt++) {
    try {
      await client.removeProcessGroup(group);
      return;
    } catch (error) {
      if (isBadName(error)) return;
      if (!(error instanceof SupervisorFault && error.faultName === 'STILL_RUNNING') || attempt >= 10) throw error;
      await sleep(1000);
    }
  }
}

/** reloadConfig, then stop/remove the removed and changed groups and add the added and changed ones. */
export async function updateSupervisor(client: SupervisorClient, log: Logger): Promise<void> {
  const { added, changed, removed } = await client.reloadConfig();
  for (const group of removed) {
    log.debug({ group }, 'supervisord: removing group');
    await stopAndRemove(client, group, log);
  }
  for (const group of changed) {
    log.debug({ group }, 'supervisord: reloading group');
    await stopAndRemove(client, group, log);
    await addGroup(client, group);
  }
  for (const group of added) {
    log.debug({ group }, 'supervisord: adding group');
    await addGroup(client, group);
  }
}

/** addProcessGroup; a group another caller added meanwhile is already what we want. */
async function addGroup(client: SupervisorClient, group: string): Promise<void> {
  try {
    await client.addProcessGroup(group);
  } catch (error) {
    if (!(error instanceof SupervisorFault && error.faultName === 'ALREADY_ADDED')) throw error;
  }
}

/** startProcessGroup without waiting; a group without programs is not an error (as the reference). */
export async function startGroup(client: SupervisorClient, group: string, log: Logger): Promise<void> {
  try {
    await client.startProcessGroup(group, false);
  } catch (error) {
    if (isBadName(error)) log.info({ group }, 'Nothing to start on the group...');
    else if (!(error instanceof SupervisorFault && error.faultName === 'ALREADY_STARTED')) throw error;
  }
}
