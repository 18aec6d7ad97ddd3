// The instance buildout, as the partition user (slapgrid.md §4.4): uid/gid of
// the partition directory's owner, HOME = the partition, clean environment,
// umask 027, partition_timeout killing the whole tree.
import path from 'node:path';
import { readBeneath, statBeneath } from '../../safe-fs/index.js';
import { buildoutCommand, runBuildout } from '../../software/buildout.js';
import type { Step } from '../step.js';
import { partitionCgroup } from '../../cgroup/group.js';
import type { Logger } from '../../util/log.js';

/**
 * A release's own bin/buildout first (as the reference), else the node's. The
 * release is the software user's tree: bin/buildout is looked at through
 * safe-fs (a link or FIFO there is not the release's buildout, and its first
 * line is read without following or blocking).
 */
export function instanceBuildoutCommand(softwarePath: string | null | undefined, configured: string | undefined, log: Logger): string[] {
  const sp = softwarePath;
  try {
    const st = sp ? statBeneath(sp, 'bin/buildout') : undefined;
    if (sp && st && !st.isFile()) log.warn({ code: 'BUILDOUT_UNSAFE', path: path.join(sp, 'bin', 'buildout') }, "not a regular file (a link, FIFO or directory); using the node's buildout");
    if (sp && st?.isFile()) {
      const firstLine = () => (readBeneath(sp, 'bin/buildout', { maxBytes: 1024 * 1024 }) ?? Buffer.alloc(0)).toString('utf8').split('\n')[0] ?? '';
      return buildoutCommand(path.join(sp, 'bin', 'buildout'), firstLine);
    }
  } catch (error) {
    log.warn({ code: 'BUILDOUT_UNSAFE', err: error }, "using the node's buildout");
  }
  return buildoutCommand(configured);
}

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
    const command = instanceBuildoutCommand(r.softwarePath, r.settings.buildout, r.log);
    const timeout = r.settings.partitionTimeout;
    r.log.info({ path: r.files.dir, ...(timeout ? { partition_timeout: timeout } : {}) }, 'Running buildout');
    await runBuildout({
      command,
      args: [...(r.settings.buildoutDebug ? ['-D'] : []), '-U', '-c', r.files.buildoutCfg],
      cwd: r.files.dir,
      user: process.getuid?.() === 0 ? r.user : undefined,
      initGroups: true,
      home: r.files.dir,
      log: r.log,
      label: r.id,
      timeout: timeout === undefined ? undefined : timeout * 1000,
      env: instanceBuildoutEnv(r.settings.instanceRoot),
      cgroup: partitionCgroup(r.id, r.settings.cgroupParent),
      noNewPrivs: true,
      forkServer: r.buildoutServer,
    });
  },
};
