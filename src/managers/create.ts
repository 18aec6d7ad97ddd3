// Managers from slapos.cfg, or undefined when nothing is configured (the
// loops then make no manager call at all).
import type { SlaposConfig } from '../config/load.js';
import { Cpuset } from '../cgroup/cpuset.js';
import { detectLayout } from '../cgroup/layout.js';
import type { Logger } from '../util/log.js';
import { Managers } from './index.js';
import { managerSettings, managersActive } from './settings.js';

export function createManagers(config: SlaposConfig, log: Logger): Managers | undefined {
  const settings = managerSettings(config, (m) => log.warn(m));
  if (!managersActive(settings)) return undefined;
  let cpuset: Cpuset | undefined;
  if (settings.enabled.includes('cpuset')) {
    try {
      cpuset = new Cpuset(detectLayout(), config.slapformat.cgroup_parent);
    } catch (error) {
      log.warn({ code: 'CGROUPS_UNUSABLE', err: error }, 'CPUSet Manager cannot format computer because cgroups do not exist');
    }
  }
  return new Managers(settings, { log, cpuset });
}
