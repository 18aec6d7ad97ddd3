// Step 2 of format: from the settings and the observed state, decide every
// change (pure). An empty step list means the node is already formatted.
import path from 'node:path';
import { planLimitWrites } from '../cgroup/limits.js';
import { partitionLimits, sameLimitValue } from './cgroup-limits.js';
import { planUsers, type UserPlan, type WantedUser } from '../users/db.js';
import { marshalComputer, samePlain, type Dict } from './computer-xml.js';
import { computerDict, partitionDict, sortedJson } from './computer.js';
import type { Observed } from './observe.js';
import {
  computerNetworkSteps, FormatError, partitionNetworkSteps, resolveNetwork, resourcePath, surplusNetworkSteps,
  type NetworkModel, type Owner,
} from './plan-network.js';
import type { FormatSettings } from './settings.js';
import type { Step } from './steps.js';

export interface FormatPlan {
  steps: Step[];
  /** The computer dict (state files, report). */
  computer: Dict;
  /** The computer dict marshalled as the master receives it (made on first use when the stored one is reused). */
  readonly computerXml: string;
  /** The state files' texts as planned (computer_xml; computer_json when configured). */
  stateXml: string;
  stateJson?: string;
  /** uid/gid of every partition user and the software user, as planned. */
  owners: Record<string, Owner>;
  mode?: 'bridge' | 'route';
  removed: string[];
  warnings: string[];
}

const RESOURCE = '.slapos-resource';

export function wantedUsers(settings: FormatSettings): WantedUser[] {
  return [
    { name: settings.softwareUser, home: settings.softwareRoot, shell: '/bin/sh', groups: [] },
    ...Array.from({ length: settings.partitionAmount }, (_, i) => ({
      name: `${settings.userBaseName}${i}`,
      home: path.join(settings.instanceRoot, `${settings.partitionBaseName}${i}`),
      shell: '/bin/sh',
      groups: [settings.softwareUser],
    })),
  ];
}

/** The users plan; also run again under the lock at apply time. */
export function usersPlan(settings: FormatSettings, observed: Pick<Observed, 'users' | 'idRanges' | 'surplus'>, today: number): UserPlan {
  const remove = observed.surplus.map((i) => `${settings.userBaseName}${i}`);
  return planUsers(observed.users, wantedUsers(settings), remove, observed.idRanges, today);
}

function existingOwner(observed: Observed, name: string): Owner {
  const line = observed.users.passwd.lines.find((l) => l[0] === name && l.length > 3);
  return line ? { uid: Number(line[2]), gid: Number(line[3]) } : { uid: 0, gid: 0 };
}

function dirSteps(steps: Step[], observed: Observed, dir: string, mode: number, owner?: Owner): void {
  const st = observed.paths.get(dir) ?? null;
  if (st && !st.isDir) throw new FormatError(`${dir} exists and is not a directory; move it away`);
  if (!st) steps.push({ kind: 'mkdir', path: dir, mode });
  else if (st.mode !== mode) steps.push({ kind: 'chmod', path: dir, mode });
  if (owner && (!st || st.uid !== owner.uid || st.gid !== owner.gid)) steps.push({ kind: 'chown', path: dir, uid: owner.uid, gid: owner.gid });
}

export function makePlan(settings: FormatSettings, observed: Observed, today: number): FormatPlan {
  const steps: Step[] = [];
  const warnings: string[] = [];
  const n = settings.partitionAmount;
  const ref = (i: number) => `${settings.partitionBaseName}${i}`;

  // Shrinking: only partitions without data go; otherwise refuse before any change.
  const holding = observed.surplus.filter((i) => {
    const entries = observed.dirEntries.get(path.join(settings.instanceRoot, ref(i))) ?? [];
    return entries.some((e) => e !== RESOURCE);
  });
  if (holding.length > 0) {
    throw new FormatError(
      `cannot reduce partition_amount to ${n}: ${holding.map(ref).join(', ')} still hold data in ${settings.instanceRoot}; ` +
        'destroy their instances (or empty the directories) first, or raise partition_amount',
    );
  }

  const net: NetworkModel | undefined = settings.alterNetwork ? resolveNetwork(settings, observed) : undefined;
  if (net?.notes) warnings.push(...net.notes);

  // Users first: everything else needs their ids.
  const owners: Record<string, Owner> = {};
  if (settings.alterUser) {
    const users = usersPlan(settings, observed, today);
    if (users.summary.length > 0 || Object.keys(users.changes).length > 0) steps.push({ kind: 'users', summary: users.summary });
    for (const [name, u] of users.users) owners[name] = { uid: u.uid, gid: u.gid };
  } else {
    for (const user of wantedUsers(settings)) owners[user.name] = existingOwner(observed, user.name);
  }

  dirSteps(steps, observed, settings.instanceRoot, 0o755);
  dirSteps(steps, observed, settings.softwareRoot, 0o755, settings.alterUser ? owners[settings.softwareUser] : undefined);

  for (let i = 0; i < n; i++) {
    dirSteps(steps, observed, path.join(settings.instanceRoot, ref(i)), 0o750, settings.alterUser ? owners[`${settings.userBaseName}${i}`] : undefined);
  }

  if (net) {
    steps.push(...computerNetworkSteps(settings, observed));
    for (let i = 0; i < n; i++) steps.push(...partitionNetworkSteps(settings, observed, net, i, owners[`${settings.userBaseName}${i}`] ?? { uid: 0, gid: 0 }));
  }

  if (observed.cgroup) {
    const { layout, existing, values } = observed.cgroup;
    for (let i = 0; i < n; i++) {
      const exists = existing.get(ref(i)) === true;
      if (!exists) steps.push({ kind: 'cgroup-create', name: ref(i) });
      for (const write of planLimitWrites(layout, path.join(settings.cgroupParent, ref(i)), partitionLimits(settings.limits, layout, exists))) {
        if (!sameLimitValue(values.get(write.file), write.value)) steps.push({ kind: 'cgroup-write', file: write.file, value: write.value });
      }
    }
  } else if (Object.keys(settings.limits).length > 0) {
    throw new FormatError(`partition limits are configured but control groups are not usable: ${observed.cgroupError ?? 'unknown'}`);
  } else {
    warnings.push(`no per-partition control groups: ${observed.cgroupError ?? 'unknown'}`);
  }

  const partitions = Array.from({ length: n }, (_, i) => partitionDict(settings, observed, net, i));
  partitions.forEach((p, i) => {
    const file = resourcePath(settings, i);
    const content = sortedJson(p, 4);
    if (observed.files.get(file) !== content) steps.push({ kind: 'write-file', path: file, mode: 0o644, content });
  });

  for (const i of observed.surplus) {
    steps.push(...surplusNetworkSteps(settings, observed, net, i));
    if (observed.cgroup?.existing.get(ref(i))) steps.push({ kind: 'cgroup-remove', name: ref(i) });
    const dir = path.join(settings.instanceRoot, ref(i));
    if (observed.paths.get(dir)) steps.push({ kind: 'remove-partition-dir', path: dir });
  }

  if (settings.certificateRepositoryPath && !observed.paths.get(settings.certificateRepositoryPath)) {
    // 0711, not the reference's 0700: a partition user opens its own <id>.crt/.key by name (the key-file of its
    // buildout's [slap-connection]) and can list nothing.
    steps.push({ kind: 'mkdir', path: settings.certificateRepositoryPath, mode: 0o711 });
  }

  const computer = computerDict(settings, observed, net, partitions);
  // Unchanged computer: reuse the stored marshalled forms instead of marshalling again.
  const same = observed.storedMarshalled && observed.stored && samePlain(computer, observed.stored);
  const marshalled = same && observed.storedMarshalled ? observed.storedMarshalled : marshalComputer(computer);
  const xml = marshalled.pretty;
  if (observed.files.get(settings.computerXml) !== xml) steps.push({ kind: 'write-file', path: settings.computerXml, mode: 0o644, content: xml });
  // An unchanged computer's JSON is the recorded file's text (format wrote it with sortedJson), not made again.
  const json = settings.computerJson ? (same && observed.storedJson !== undefined ? observed.storedJson : sortedJson(computer, 2)) : undefined;
  if (settings.computerJson && json !== undefined && observed.files.get(settings.computerJson) !== json) {
    steps.push({ kind: 'write-file', path: settings.computerJson, mode: 0o644, content: json });
  }
  return {
    steps,
    computer,
    get computerXml() {
      return marshalled.compact;
    },
    stateXml: xml,
    ...(json !== undefined ? { stateJson: json } : {}),
    owners,
    ...(net ? { mode: net.mode } : {}),
    removed: observed.surplus.map(ref),
    warnings,
  };
}
