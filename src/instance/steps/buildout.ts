// The instance buildout, as the partition user (slapgrid.md §4.4): uid/gid of
// the partition directory's owner, HOME = the partition, clean environment,
// umask 027, partition_timeout killing the whole tree.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { buildoutCommand, runBuildout } from '../../software/buildout.js';
import type { Step } from '../step.js';

/**
 * What the reference's instance buildout finds in its environment beyond our
 * clean one (slapgrid.md §4.2, recorded in slap-traffic step 13):
 * SLAPGRID_INSTANCE_ROOT, by which slapos.slap finds the transaction file it
 * writes the requested titles to; the client configuration the node was given
 * (inherited there); EDITOR as `slapos` sets it.
 */
export function instanceBuildoutEnv(instanceRoot: string, agent: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = { SLAPGRID_INSTANCE_ROOT: instanceRoot, EDITOR: agent['EDITOR'] ?? 'vi' };
  const client = agent['SLAPOS_CLIENT_CONFIGURATION'];
  if (client !== undefined) env['SLAPOS_CLIENT_CONFIGURATION'] = client;
  return env;
}

export const buildoutStep: Step = {
  name: 'buildout',
  async run(r) {
    // A release's own bin/buildout first (as the reference); else the node's buildout.
    const own = r.softwarePath ? path.join(r.softwarePath, 'bin', 'buildout') : undefined;
    const command = buildoutCommand(own && existsSync(own) ? own : r.settings.buildout);
    const timeout = r.settings.partitionTimeout;
    r.log.info(`Running buildout in ${r.files.dir}${timeout ? ` (partition_timeout ${timeout} s)` : ''}`);
    await runBuildout({
      command,
      args: ['-U', '-c', r.files.buildoutCfg],
      cwd: r.files.dir,
      user: process.getuid?.() === 0 ? r.user : undefined,
      initGroups: true,
      home: r.files.dir,
      log: r.log,
      label: r.id,
      timeout: timeout === undefined ? undefined : timeout * 1000,
      env: instanceBuildoutEnv(r.settings.instanceRoot),
    });
  },
};
