// What collect and report read from slapos.cfg, checked once.
import path from 'node:path';
import { ConfigError, requireKeys, type SlaposConfig } from '../config/load.js';
import { collectSection, type CollectSection } from '../config/schema.js';
import { ignoredHint } from '../config/suggest.js';
import type { PartitionNaming } from './partitions.js';

export interface AccountingSettings {
  computerId: string;
  instanceRoot: string;
  cgroupParent: string;
  /** Certificates of partitions (<repo>/<id>.crt/.key), removed at destruction. */
  certificateRepository: string | undefined;
  retentionDays: number;
  collect: CollectSection;
  /** <instance_root>/var/hardware-status.json */
  hardwareStatusFile: string;
  /** How partitions, users and taps are named ([slapformat]): identity comes from root-owned state only. */
  naming: PartitionNaming;
  /** Format's state files (computer_xml, computer_json), when configured. */
  formatState?: { xml: string; json?: string | undefined } | undefined;
}

export function collectOptions(config: SlaposConfig, warn: (message: string) => void = () => {}): CollectSection {
  const raw = Object.fromEntries(config.raw.get('collect') ?? new Map<string, string>());
  const known = new Set(Object.keys(collectSection.shape));
  for (const key of Object.keys(raw)) if (!known.has(key)) warn(`${config.file}: unknown key [collect] ${key}${ignoredHint(key, known)}`);
  const result = collectSection.safeParse(Object.fromEntries(Object.entries(raw).filter(([k]) => known.has(k))));
  if (!result.success) {
    const issue = result.error.issues[0];
    const key = String(issue?.path[0] ?? '');
    throw new ConfigError(`[collect] ${key}: ${issue?.message ?? 'invalid'}`, config.file, 'collect', key);
  }
  return result.data;
}

export function accountingSettings(config: SlaposConfig, warn?: (message: string) => void): AccountingSettings {
  const slapos = requireKeys(config, 'slapos', ['computer_id', 'instance_root']);
  return {
    computerId: slapos.computer_id,
    instanceRoot: slapos.instance_root,
    cgroupParent: config.slapformat.cgroup_parent,
    certificateRepository: slapos.certificate_repository_path,
    retentionDays: slapos.collect_cache,
    collect: collectOptions(config, warn),
    hardwareStatusFile: hardwareStatusPath(slapos.instance_root),
    naming: {
      partitionBaseName: config.slapformat.partition_base_name,
      userBaseName: config.slapformat.user_base_name,
      tapBaseName: config.slapformat.tap_base_name,
    },
    formatState: config.slapformat.computer_xml
      ? { xml: path.resolve(config.slapformat.computer_xml), json: config.slapformat.computer_json ? path.resolve(config.slapformat.computer_json) : undefined }
      : undefined,
  };
}

export function hardwareStatusPath(instanceRoot: string): string {
  return path.join(instanceRoot, 'var', 'hardware-status.json');
}
