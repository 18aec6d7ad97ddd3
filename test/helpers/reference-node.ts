// Rebuilds, in a fresh test namespace, the node that the reference
// `slapos node format` (slapos.core 1.24) left behind, from the recorded data in
// test/fixtures/<fixture>/ only: kernel dumps (ip -j link/addr/route), the user
// database lines, the file listing and the files themselves. Nothing here knows
// the fixture's values: another capture in the same shape (other prefix, more
// partitions, tuns) is rebuilt the same way.
//
// What is not replayed: MACs, ifindexes, link-local addresses and the kernel's
// own routes (the kernel makes them again), uid/gid numbers (the machine picks
// them; the ranges are the same since the same tools are used).
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { fixturesDir } from './paths.js';
import { recordCreated } from './registry.js';
import { createNetns, deleteAccount, run, tempDir } from './system.js';

export interface ReferenceNode {
  fixture: string;
  netns: string;
  /** @DIR@: holds slapos.cfg, slapos.xml, slapos.json. */
  dir: string;
  instanceRoot: string;
  softwareRoot: string;
  cfg: string;
  users: string[];
  groups: string[];
  /** Placeholder → real path, longest real path first (to substitute back). */
  placeholders: [string, string][];
}

interface IpLink {
  ifname: string;
  link?: string;
  master?: string;
  flags: string[];
  mtu?: number;
  linkinfo?: { info_kind?: string; info_data?: { type?: string; user?: string; group?: string; multi_queue?: boolean; pi?: boolean; vnet_hdr?: boolean } };
}
interface IpAddrInfo { family: string; local: string; prefixlen: number; scope: string; noprefixroute?: boolean; nodad?: boolean }
interface IpAddrLink { ifname: string; addr_info: IpAddrInfo[] }
interface IpRoute { type?: string; dst: string; gateway?: string; dev?: string; table?: string; protocol?: string; metric?: number }

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, 'utf8')) as T;
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));

/** Replaces @DIR@, @INSTANCE_ROOT@, @SOFTWARE_ROOT@ by the real paths. */
export function substitute(text: string, node: Pick<ReferenceNode, 'placeholders'>): string {
  let out = text;
  for (const [placeholder, real] of node.placeholders) out = out.split(placeholder).join(real);
  return out;
}

/** Replaces the real paths by their placeholders (longest first). */
export function unsubstitute(text: string, node: Pick<ReferenceNode, 'placeholders'>): string {
  let out = text;
  for (const [placeholder, real] of node.placeholders) out = out.split(real).join(placeholder);
  return out;
}

function userExists(kind: 'passwd' | 'group', name: string): boolean {
  return spawnSync('getent', [kind, name]).status === 0;
}

/**
 * A copy of a recorded node with every name and address rewritten (file names
 * and contents), for example another IPv6 prefix, another IPv4 pool, other
 * user, tap and partition names: the same layout as another reference node
 * would have. Returns the copy's directory, for recreateReferenceNode.
 */
export function variantFixture(t: ExecutionContext, replacements: [string, string][], fixture = 'reference-node'): string {
  const src = path.join(fixturesDir, fixture);
  const out = tempDir(t, 'slapos-refvariant-');
  const rewrite = (text: string) => replacements.reduce((acc, [from, to]) => acc.split(from).join(to), text);
  const copy = (from: string, to: string) => {
    mkdirSync(to, { recursive: true });
    for (const entry of readdirSync(from, { withFileTypes: true })) {
      const target = path.join(to, rewrite(entry.name));
      if (entry.isDirectory()) copy(path.join(from, entry.name), target);
      else writeFileSync(target, rewrite(readFileSync(path.join(from, entry.name), 'utf8')));
    }
  };
  copy(src, out);
  return out;
}

/** Rebuilds the recorded node `fixture` (a folder of test/fixtures, or a directory from variantFixture). */
export function recreateReferenceNode(t: ExecutionContext, fixture = 'reference-node'): ReferenceNode {
  const src = path.isAbsolute(fixture) ? fixture : path.join(fixturesDir, fixture);
  const passwd = lines(path.join(src, 'users', 'passwd.txt')).map((l) => l.split(':'));
  const group = lines(path.join(src, 'users', 'group.txt')).map((l) => l.split(':'));
  const users = passwd.map((f) => f[0] as string);
  const groups = group.map((f) => f[0] as string);
  // The fixture's names are test-only but machine-wide: refuse rather than adopt someone else's.
  const taken = [...users.filter((u) => userExists('passwd', u)), ...groups.filter((g) => userExists('group', g))];
  if (taken.length > 0) throw new Error(`cannot rebuild ${fixture}: ${[...new Set(taken)].join(', ')} already exist on this machine (another copy running, or left over)`);

  // For scripts/clean-test-leftovers.sh, should this test be killed before its teardown.
  for (const u of users) recordCreated('user', u);
  for (const g of groups) recordCreated('group', g);
  const netns = createNetns(t);
  const dir = tempDir(t, 'slapos-refnode-');
  chmodSync(dir, 0o755);
  const instanceRoot = path.join(dir, 'inst');
  const softwareRoot = path.join(dir, 'soft');
  const node: ReferenceNode = {
    fixture, netns, dir, instanceRoot, softwareRoot, cfg: path.join(dir, 'slapos.cfg'), users, groups,
    placeholders: [['@INSTANCE_ROOT@', instanceRoot], ['@SOFTWARE_ROOT@', softwareRoot], ['@DIR@', dir]],
  };
  t.teardown(() => {
    for (const u of users) deleteAccount('user', u);
    for (const g of groups) deleteAccount('group', g);
  });
  const ip = (...args: string[]) => run('ip', ['-n', netns, ...args]);

  // 1. Users and groups, in gid order (the order the reference made them): a
  //    group first, then the user whose primary group it is.
  const members = (name: string) => group.filter((f) => (f[3] ?? '').split(',').includes(name)).map((f) => f[0] as string);
  const primaryName = (gid: string) => group.find((f) => f[2] === gid)?.[0] ?? '';
  const created = new Set<string>();
  for (const g of [...group].sort((a, b) => Number(a[2]) - Number(b[2]))) {
    const name = g[0] as string;
    run('groupadd', [name]);
    created.add(name);
    for (const u of passwd.filter((f) => primaryName(f[3] as string) === name)) {
      const extra = members(u[0] as string).filter((m) => created.has(m));
      const uidRange = Number(u[2]) < 1000 ? ['-r'] : [];
      run('useradd', ['-d', substitute(u[5] as string, node), '-g', name, '-s', u[6] as string, ...uidRange, ...(extra.length ? ['-G', extra.join(',')] : []), u[0] as string]);
      run('passwd', ['-l', u[0] as string]);
    }
  }
  // Memberships in groups made after the user.
  for (const u of users) {
    const missing = members(u).filter((g) => !run('id', ['-Gn', u]).trim().split(' ').includes(g));
    if (missing.length > 0) run('usermod', ['-aG', missing.join(','), u]);
  }

  // 2. Links: bridges and veth pairs (the machine), then tun/tap devices
  //    (format's), masters, mtu, up.
  const links = readJson<IpLink[]>(path.join(src, 'kernel', 'ip-link.json'));
  const made = new Set<string>(['lo']);
  for (const l of links) {
    if (made.has(l.ifname)) continue;
    const kind = l.linkinfo?.info_kind;
    if (kind === 'bridge') ip('link', 'add', l.ifname, 'type', 'bridge');
    else if (kind === 'veth' && l.link) {
      ip('link', 'add', l.ifname, 'type', 'veth', 'peer', 'name', l.link);
      made.add(l.link);
    } else if (kind === 'tun') {
      const d = l.linkinfo?.info_data ?? {};
      ip('tuntap', 'add', 'dev', l.ifname, 'mode', d.type ?? 'tap', ...(d.user ? ['user', d.user] : []), ...(d.group ? ['group', d.group] : []),
        ...(d.multi_queue ? ['multi_queue'] : []), ...(d.pi ? ['pi'] : []), ...(d.vnet_hdr ? ['vnet_hdr'] : []));
    } else throw new Error(`${fixture}: cannot rebuild link ${l.ifname} of kind ${kind ?? '(none)'}`);
    made.add(l.ifname);
  }
  for (const l of links) if (l.master) ip('link', 'set', l.ifname, 'master', l.master);
  for (const l of links) if (l.flags.includes('UP') && l.ifname !== 'lo') ip('link', 'set', l.ifname, 'up');

  // 3. Addresses, oldest first (ip lists IPv6 newest first), but the kernel's own.
  for (const a of readJson<IpAddrLink[]>(path.join(src, 'kernel', 'ip-addr.json'))) {
    const v4 = a.addr_info.filter((x) => x.family === 'inet');
    const v6 = a.addr_info.filter((x) => x.family === 'inet6').reverse();
    for (const x of [...v4, ...v6]) {
      if (x.scope === 'link' || x.scope === 'host') continue;
      ip('addr', 'add', `${x.local}/${x.prefixlen}`, 'dev', a.ifname, ...(x.noprefixroute ? ['noprefixroute'] : []), ...(x.nodad ? ['nodad'] : []));
    }
  }

  // 4. Routes that the kernel does not make itself (no "proto kernel").
  for (const [family, file] of [['-6', 'ip-route6.json'], ['-4', 'ip-route4.json']] as const) {
    const routes = readJson<IpRoute[]>(path.join(src, 'kernel', file));
    // Host routes first: a route via a gateway needs the gateway reachable.
    const ordered = [...routes.filter((r) => !r.gateway), ...routes.filter((r) => r.gateway)];
    for (const r of ordered) {
      if (r.protocol === 'kernel' || r.protocol === 'ra' || !r.dev) continue;
      ip(family, 'route', 'add', ...(r.type && r.type !== 'unicast' ? [r.type] : []), r.dst, ...(r.gateway ? ['via', r.gateway] : []), 'dev', r.dev,
        ...(r.table ? ['table', r.table] : []), ...(r.metric !== undefined ? ['metric', String(r.metric)] : []));
    }
  }

  // 5. sysctls format changed ("key: before -> after").
  for (const line of readFileSync(path.join(src, 'kernel', 'sysctl-diff.txt'), 'utf8').split('\n')) {
    const m = /^(net\.[\w.]+): (\S+) -> (\S+)$/.exec(line);
    if (m) run('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', `${m[1]}=${m[3]}`]);
  }

  // 6. Files and directories as listed (find -printf '%p %m %u %g %s').
  for (const line of lines(path.join(src, 'files.txt'))) {
    const fields = line.split(' ');
    const [mode, owner, grp] = fields.slice(-4, -1) as [string, string, string];
    const file = substitute(fields.slice(0, -4).join(' '), node);
    if (file === dir || /\/proxy\.db/.test(file)) continue;
    const recorded = path.join(src, path.basename(file) === '.slapos-resource' ? `${path.basename(path.dirname(file))}.slapos-resource` : path.basename(file));
    if (existsSync(recorded) && path.basename(file) !== 'passwd.txt') {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, substitute(readFileSync(recorded, 'utf8'), node));
    } else {
      mkdirSync(file, { recursive: true });
    }
    chownSync(file, Number(run('id', ['-u', owner]).trim()), Number(run('getent', ['group', grp]).split(':')[2]));
    chmodSync(file, parseInt(mode, 8));
  }
  return node;
}
