// The instance buildout, as the partition user (slapgrid.md §4.4): uid/gid of
// the partition directory's owner, HOME = the partition, clean environment,
// umask 027, partition_timeout killing the whole tree.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { buildoutCommand, runBuildout } from '../../software/buildout.js';
import type { Step } from '../step.js';

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
    });
  },
};
