// The partition runner's unit: one lifecycle concern per step, each in its
// own file under steps/ (certificate, install, buildout, connection,
// processes, promises, report). A step is idempotent: running it again with
// the same inputs changes nothing more.
import type { SupervisorClient } from '../supervisor/client.js';
import type { ComputerPartition } from '../slap/shapes.js';
import type { Logger } from '../util/log.js';
import type { PartitionFiles } from '../partition/files.js';
import type { InstanceMasterLink } from './master-link.js';
import type { InstanceSettings } from './settings.js';
import type { User } from '../users/user.js';
import type { BuildoutForkServer } from '../executor/fork-server.js';



/** Everything a step may use; steps add what later steps need (e.g. softwarePath). */
export interface PartitionRun {
  id: string;
  partition: ComputerPartition;
  files: PartitionFiles;
  settings: InstanceSettings;
  link: InstanceMasterLink;
  /** `update` applies the group files changed so far (batched with other partitions' by the loop: batch.ts). */
  supervisor: { client: SupervisorClient; includeDir: string; update(log: Logger): Promise<void> };
  user: User;
  /** <software_root>/<md5(url)>, or null without a release. */
  softwarePath: string | null;
  forceStop: boolean;
  log: Logger;
  /** The pass's buildout fork server, when on. */
  buildoutServer?: BuildoutForkServer | undefined;
}

export interface Step {
  name: string;
  /** Also run after an earlier step failed (stopping a stopped partition's processes). */
  always?: boolean;
  run(run: PartitionRun): Promise<void>;
}

/** Runs the steps in order; after a failure only `always` steps run; the first error is rethrown. */
export async function runSteps(run: PartitionRun, steps: readonly Step[]): Promise<void> {
  let failure: { error: unknown } | undefined;
  for (const step of steps) {
    if (failure && !step.always) continue;
    const started = performance.now();
    try {
      await step.run({ ...run, log: run.log.child({ step: step.name }) });
      run.log.debug({ step: step.name, duration_ms: Number((performance.now() - started).toFixed(1)) }, 'step done');
    } catch (error) {
      if (!failure) failure = { error };
      else run.log.warn({ code: 'STEP_FAILED_TOO', step: step.name, err: error }, 'step failed too');
    }
  }
  if (failure) throw failure.error;
}
