// The partition's processes under supervisord (slapgrid.md §4.5–4.6): etc/run
// and etc/service become the group file; start = update + startProcessGroup;
// stop = remove the group file + update (which stops and removes the group).
import { listBeneath } from '../../safe-fs/index.js';
import { groupConfig, unsafeProgramNames } from '../programs.js';
import { removeGroupFile, startGroup, writeGroupFile } from '../../supervisor/groups.js';
import type { PartitionRun, Step } from '../step.js';
import { partitionCgroup } from '../../cgroup/group.js';
import { launcherPath } from '../../native/index.js';

/** Names in etc/run or etc/service (through safe-fs: a link at etc/ or etc/run is not listed through). */
function entries(partitionDir: string, rel: string): string[] | undefined {
  try {
    return listBeneath(partitionDir, rel)?.map((e) => e.name);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'EXDEV') return undefined;
    throw error;
  }
}

/** Writes the group file from etc/run and etc/service; resolves to whether it changed. */
export function writePrograms(r: PartitionRun): boolean {
  const run = entries(r.files.dir, 'etc/run');
  const service = entries(r.files.dir, 'etc/service');
  if (run === undefined && service === undefined) r.log.warn({ code: 'NO_PROCESSES', partition: r.id }, 'No runners nor services found for partition');
  const source = {
    group: r.id, partitionDir: r.files.dir, uid: r.user.uid, gid: r.user.gid,
    user: { name: r.user.name, home: r.user.home }, run: run ?? [], service: service ?? [],
    launcher: launcherPath, cgroupProcs: partitionCgroup(r.id, r.settings.cgroupParent)?.tree.procsFiles(r.id) ?? [],
  };
  for (const name of unsafeProgramNames(source)) r.log.warn({ code: 'PROGRAM_NAME_REFUSED', partition: r.id, program: name }, 'program name not allowed (letters, digits, _ . @ + -); ignored');
  return writeGroupFile(r.supervisor.includeDir, r.id, groupConfig(source));
}

/**
 * Programs are born in the partition's cgroup (slapos-launch joins it before
 * dropping to the user, src/supervisor/config.ts), so nothing is moved after a
 * start: moving needed supervisord's whole process list and a /proc scan per
 * partition, O(N²) over a first pass (issue 29). The collect step still
 * catches processes from before that design (src/cgroup/attach.ts).
 */
export const startStep: Step = {
  name: 'start',
  async run(r) {
    if (writePrograms(r)) await r.supervisor.update(r.log);
    await startGroup(r.supervisor.client, r.id, r.log);
  },
};

export const stopStep: Step = {
  name: 'stop',
  always: true,
  async run(r) {
    if (removeGroupFile(r.supervisor.includeDir, r.id)) await r.supervisor.update(r.log);
    // A stopped partition runs nothing: whatever left supervisord's process
    // groups (setsid, double fork) is still in the partition's cgroup.
    const cgroup = partitionCgroup(r.id, r.settings.cgroupParent);
    if (cgroup) {
      const { killed, left } = await cgroup.tree.kill(cgroup.group);
      if (killed > 0) r.log.info({ partition: r.id, killed }, 'killed process(es) left in its cgroup after the stop');
      if (left.length > 0) r.log.warn({ code: 'CGROUP_NOT_EMPTY', partition: r.id, pids: left }, 'process(es) still in its cgroup after SIGKILL');
    }
  },
};

/** --force-stop of a started partition: programs written, then stopped (as the reference). */
export const forceStopStep: Step = {
  name: 'force-stop',
  async run(r) {
    writePrograms(r);
    await stopStep.run(r);
  },
};
