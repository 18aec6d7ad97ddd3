// Before buildout (slapgrid.md §4.4): free space, the software_release link,
// the partition's mode, the release's template; then the partition's
// configuration file and buildout.cfg (template + tail).
import { existsSync, lchownSync, lstatSync, readlinkSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { freeSpace } from '../../software/install.js';
import { readFormatState } from '../../accounting/partitions.js';
import type { Dict } from '../../format/computer-xml.js';
import { writeIfChanged } from '../../partition/state.js';
import { readTextBeneath, statBeneath } from '../../safe-fs/index.js';
import { instanceConfiguration, slapConfigurationSection, type PartitionResource } from '../configuration.js';
import { buildoutTail, partitionBuildoutCfg } from '../tail.js';
import type { PartitionRun, Step } from '../step.js';

function checkFreeSpace(r: PartitionRun): void {
  const available = freeSpace(r.files.dir);
  if (available < r.settings.minFreeSpace) {
    throw new Error(`Not enough space for ${r.files.dir}: ${available} bytes available, ${r.settings.minFreeSpace} required ([slapos] instance_min_free_space)`);
  }
}

function linkSoftware(r: PartitionRun, softwarePath: string): void {
  const link = r.files.softwareRelease;
  let st;
  try {
    st = lstatSync(link);
  } catch {
    st = undefined;
  }
  if (st && !st.isSymbolicLink()) return; // as the reference: something else is left alone
  if (st && readlinkSync(link) === softwarePath) return;
  if (st) unlinkSync(link);
  symlinkSync(softwarePath, link);
  if (process.getuid?.() === 0) lchownSync(link, r.user.uid, r.user.gid);
}

/** Format's state, parsed once per file version (a pass reads it for every partition). */
let stateMemo: { key: string; value: Dict | undefined } | undefined;

/**
 * The partition's entry of format's state (root's, the same content format
 * wrote to .slapos-resource): the fallback for addresses and the IPv6 range.
 * The partition's own .slapos-resource is never read back: the partition
 * could write anything there.
 */
async function readResource(r: PartitionRun): Promise<PartitionResource | undefined> {
  const state = r.settings.formatState;
  if (!state) return undefined;
  try {
    const key = [state.xml, state.json].map((f) => {
      const st = f ? statSync(f, { throwIfNoEntry: false }) : undefined;
      return st ? `${f}:${st.mtimeMs}:${st.size}` : '-';
    }).join('|');
    if (stateMemo?.key !== key) stateMemo = { key, value: await readFormatState(state) };
    const list = Array.isArray(stateMemo.value?.partition_list) ? (stateMemo.value.partition_list as unknown[]) : [];
    return list.find((p) => typeof p === 'object' && p !== null && (p as { reference?: unknown }).reference === r.id) as PartitionResource | undefined;
  } catch (error) {
    r.log.warn({ code: 'FORMAT_STATE_UNREADABLE', path: state.xml, err: error }, "format's state unreadable; addresses come from the master only");
    return undefined;
  }
}

export const installStep: Step = {
  name: 'install',
  async run(r) {
    checkFreeSpace(r);
    const url = r.partition.softwareRelease?.url;
    if (!url || !r.softwarePath) throw new Error(`Computer Partition ${r.id} has no software release`);
    linkSoftware(r, r.softwarePath);
    const mode = statSync(r.files.dir).mode & 0o7777;
    if (mode !== 0o750) {
      throw new Error(`Wrong permissions in ${r.files.dir}: actual permissions are: 0${mode.toString(8)}, wanted are 0750 (run slapos node format)`);
    }
    if (!existsSync(r.softwarePath)) throw new Error(`Software Release ${url} is not present on system.\nCannot deploy instance.`);
    // The release is the software user's tree: its template is read through safe-fs.
    const softwarePath = r.softwarePath;
    const templateName = ['instance.cfg', 'template.cfg'].find((name) => statBeneath(softwarePath, name) !== undefined);
    const template = templateName === undefined ? undefined : path.join(softwarePath, templateName);
    if (!template) {
      throw new Error(`Software Release ${url} is not correctly installed.\nMissing file: ${path.join(r.softwarePath, 'instance.cfg')}`);
    }
    const s = r.settings;
    const configuration = instanceConfiguration(r.partition, await readResource(r), {
      masterUrl: s.masterUrl, storageHome: s.storageHome, connectionFile: r.files.connection,
    });
    // Root-owned, readable by the partition's group only: parameters may hold secrets.
    const owner = process.getuid?.() === 0 ? { uid: 0, gid: r.user.gid } : undefined;
    writeIfChanged(r.files.configuration, `${JSON.stringify(configuration, null, 2)}\n`, 0o640, owner);
    const repo = s.certificateRepository;
    const tail = buildoutTail({
      computerId: s.computerId,
      partitionId: r.id,
      masterUrl: s.masterUrl,
      softwareReleaseUrl: url,
      keyFile: repo ? path.join(repo, `${r.id}.key`) : '',
      certFile: repo ? path.join(repo, `${r.id}.crt`) : '',
      sharedPartList: s.sharedPartList,
      buildTimePartList: s.buildTimePartList,
      requestedState: r.partition.requestedState,
      storageHome: s.storageHome,
      ipv4GlobalNetwork: s.ipv4GlobalNetwork,
      slapConfiguration: slapConfigurationSection(configuration, r.files.configuration),
    });
    writeIfChanged(r.files.buildoutCfg, partitionBuildoutCfg(readTextBeneath(softwarePath, templateName!, { maxBytes: 8 * 1024 * 1024 }) ?? '', tail), 0o640, owner);
  },
};
