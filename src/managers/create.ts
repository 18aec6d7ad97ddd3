// Managers from slapos.cfg, or undefined when nothing is configured (the
// loops then make no manager call at all). The managers' code (nftables,
// netlink, pools) is loaded only when one is configured: a node without
// managers does not pay for it in every pass (issue 29, peak RSS).
import type { SlaposConfig } from '../config/load.js';
import type { Cpuset } from '../cgroup/cpuset.js';
import type { Logger } from '../util/log.js';
import type { Managers } from './index.js';
import { managerSettings, managersActive } from './settings.js';

export async function createManagers(config: SlaposConfig, log: Logger): Promise<Managers | undefined> {
  const settings = managerSettings(config, (m) => log.warn(m));
  if (!managersActive(settings)) return undefined;
  const [{ Cpuset }, { detectLayout }, { Managers }] = await Promise.all([import('../cgroup/cpuset.js'), import('../cgroup/layout.js'), import('./index.js')]);
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
