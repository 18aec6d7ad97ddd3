// The steps of a partition by requested state (slapgrid.md §4.3 step 6).
import type { Step } from '../step.js';
import { buildoutStep } from './buildout.js';
import { certificateStep } from './certificate.js';
import { connectionStep } from './connection.js';
import { installStep } from './install.js';
import { forceStopStep, startStep, stopStep } from './processes.js';
import { promisesStep } from './promises.js';
import { relatedInstancesStep } from './related.js';
import { reportStartedStep, reportStoppedStep } from './report.js';

export class UnsupportedStateError extends Error {
  override name = 'UnsupportedStateError';
}

export function stepsFor(id: string, state: string, forceStop: boolean): Step[] {
  switch (state) {
    case 'started':
      return forceStop
        ? [certificateStep, installStep, buildoutStep, connectionStep, forceStopStep, relatedInstancesStep]
        : [certificateStep, installStep, buildoutStep, connectionStep, startStep, promisesStep, reportStartedStep, relatedInstancesStep];
    case 'stopped':
      // buildout still runs so that the state reaches requested children; the stop always happens.
      return [certificateStep, installStep, buildoutStep, connectionStep, stopStep, reportStoppedStep, relatedInstancesStep];
    case 'destroyed':
      // Destruction is the report loop's job; here the processes only stop.
      return [certificateStep, stopStep, reportStoppedStep];
    default:
      throw new UnsupportedStateError(`Computer Partition '${id}' has unsupported state: ${state}`);
  }
}
