// The instance loop's settings, read once from slapos.cfg.
import path from 'node:path';
import { requireKeys, type SlaposConfig } from '../config/load.js';
import { type BackoffPolicy } from '../partition/backoff.js';

export interface InstanceSettings {
  computerId: string;
  masterUrl: string;
  instanceRoot: string;
  softwareRoot: string;
  certificateRepository: string | undefined;
  /** [slapos] buildout, when set. */
  buildout: string | undefined;
  /** --buildout-debug: buildout runs with -D. */
  buildoutDebug?: boolean;
  maximumPeriodicity: number;
  /** Seconds a promise may run ([slapos] promise_timeout). */
  promiseTimeout: number;
  /** Seconds, or undefined for none. */
  partitionTimeout: number | undefined;
  /** [slapos] buildout_fork_server: one buildout fork server per pass (src/executor/fork-server.ts). */
  buildoutForkServer?: boolean;
  minFreeSpace: number;
  sharedPartList: readonly string[];
  buildTimePartList: readonly string[];
  storageHome: string;
  ipv4GlobalNetwork: string;
  backoff: BackoffPolicy;
  forbidSupervisordLaunch: boolean;
  pidFile: string;
  /** Parent of the partitions' cgroups ([slapformat] cgroup_parent). */
  cgroupParent: string;
  /** Format's state files: the partition's addresses and range come from there (root's), never from its .slapos-resource. */
  formatState?: { xml: string; json?: string | undefined } | undefined;
}

export function instanceSettings(config: SlaposConfig): InstanceSettings {
  const s = requireKeys(config, 'slapos', ['computer_id', 'master_url', 'software_root', 'instance_root']);
  return {
    computerId: s.computer_id,
    masterUrl: s.master_url,
    instanceRoot: path.resolve(s.instance_root),
    softwareRoot: path.resolve(s.software_root),
    certificateRepository: s.certificate_repository_path,
    buildout: s.buildout,
    maximumPeriodicity: s.maximum_periodicity,
    promiseTimeout: s.promise_timeout,
    partitionTimeout: s.partition_timeout,
    buildoutForkServer: s.buildout_fork_server,
    minFreeSpace: s.instance_min_free_space,
    sharedPartList: s.shared_part_list,
    buildTimePartList: s.build_time_part_list,
    storageHome: s.instance_storage_home ?? '',
    ipv4GlobalNetwork: s.ipv4_global_network ?? '',
    backoff: { baseSeconds: s.instance_backoff_base, maxSeconds: s.instance_backoff_max },
    forbidSupervisordLaunch: s.forbid_supervisord_automatic_launch,
    pidFile: s.pidfile_instance,
    cgroupParent: config.slapformat.cgroup_parent,
    formatState: config.slapformat.computer_xml
      ? { xml: path.resolve(config.slapformat.computer_xml), json: config.slapformat.computer_json ? path.resolve(config.slapformat.computer_json) : undefined }
      : undefined,
  };
}
