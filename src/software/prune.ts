// `slapos node prune` (networkcache.md §12): removes the shared parts
// (`<last shared_part_list entry>/<name>/<hash>`) that nothing uses any more.
// A part is used when its hash appears in a usage text: a release's
// .installed.cfg or bin/* script, a signature file of a part still kept, the
// same files of nested SlapOS trees found in partitions (their slapos.cfg).
// Decide (unusedParts, pure) is apart from the reads and removals; every
// read goes through safe-fs (no link followed, no FIFO, bounded size), so a
// partition can make prune keep a part or stop with an error, never delete
// anything but unused parts under the shared root.
import path from 'node:path';
import { parseIni, sectionValues } from '../config/ini.js';
import { listBeneath, readBeneath, removeBeneath } from '../safe-fs/index.js';
import type { Logger } from '../util/log.js';

export interface PartCandidate {
  /** `<name>/<hash>` under the shared root. */
  rel: string;
  hash: string;
  /** Texts of its own signature files (.buildout-shared.json, .*signature). */
  signatures: string[];
}

/**
 * The parts to remove, in removal order: passes repeat with the signatures of
 * the parts removed so far no longer counting, so a chain of parts used only
 * by each other goes in one run (and a dry run shows the whole cascade).
 */
export function unusedParts(candidates: readonly PartCandidate[], usageTexts: readonly string[]): PartCandidate[] {
  const removed: PartCandidate[] = [];
  const gone = new Set<string>();
  for (;;) {
    const texts = [...usageTexts, ...candidates.filter((c) => !gone.has(c.rel)).flatMap((c) => c.signatures)];
    const pass = candidates.filter((c) => !gone.has(c.rel) && !texts.some((text) => text.includes(c.hash)));
    if (pass.length === 0) return removed;
    for (const c of pass) {
      gone.add(c.rel);
      removed.push(c);
    }
  }
}

/** Usage texts and scripts may be large (a release's bin/ holds what buildout put there). */
const MAX_TEXT = 64 * 1024 * 1024;
const SIGNATURE = /^\..*signature$/;
const visible = (name: string) => !name.startsWith('.');

/** A file's text, or undefined when it is not UTF-8 (a binary in bin/: skipped, as the reference). */
function text(base: string, rel: string): string | undefined {
  const bytes = readBeneath(base, rel, { maxBytes: MAX_TEXT });
  if (bytes === undefined) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

/** `<root>/*\/*` (hidden names skipped), each with its signature texts. */
export function sharedCandidates(root: string): PartCandidate[] {
  const out: PartCandidate[] = [];
  for (const name of listBeneath(root, '') ?? []) {
    if (name.type !== 'directory' || !visible(name.name)) continue;
    for (const hash of listBeneath(root, name.name) ?? []) {
      if (hash.type !== 'directory' || !visible(hash.name)) continue;
      const rel = path.join(name.name, hash.name);
      const signatures = (listBeneath(root, rel) ?? [])
        .filter((f) => f.type === 'file' && (f.name === '.buildout-shared.json' || SIGNATURE.test(f.name)))
        .flatMap((f) => text(root, path.join(rel, f.name)) ?? []);
      out.push({ rel, hash: hash.name, signatures });
    }
  }
  return out;
}

/** `<software_root>/*\/.installed.cfg` and `<software_root>/*\/bin/*` (regular files only: no link is followed). */
export function softwareUsageTexts(softwareRoot: string): string[] {
  const out: string[] = [];
  for (const release of listBeneath(softwareRoot, '') ?? []) {
    if (release.type !== 'directory') continue;
    const installed = text(softwareRoot, path.join(release.name, '.installed.cfg'));
    if (installed !== undefined) out.push(installed);
    for (const script of listBeneath(softwareRoot, path.join(release.name, 'bin')) ?? []) {
      if (script.type !== 'file') continue;
      const body = text(softwareRoot, path.join(release.name, 'bin', script.name));
      if (body !== undefined) out.push(body);
    }
  }
  return out;
}

/** An absolute path as (base "/", relative path): safe-fs then refuses any link on the way. */
const fromRoot = (absolute: string) => path.relative('/', path.resolve(absolute));

/** Usage texts of SlapOS trees nested in partitions: every slapos.cfg under instance_root, recursively. */
export function nestedUsageTexts(instanceRoot: string, log: Logger, visited = new Set<string>()): string[] {
  const resolved = path.resolve(instanceRoot);
  if (visited.has(resolved)) return [];
  visited.add(resolved);
  const out: string[] = [];
  // Beneath instance_root itself (a trusted path, which may lie behind a link); nothing below it is followed.
  const walk = (rel: string) => {
    for (const entry of listBeneath(resolved, rel) ?? []) {
      const child = path.join(rel, entry.name);
      if (entry.type === 'directory') walk(child);
      else if (entry.type === 'file' && entry.name === 'slapos.cfg') out.push(...nestedTree(resolved, child, log, visited));
    }
  };
  walk('');
  return out;
}

/** The usage texts of the tree a nested slapos.cfg describes (its paths are read from "/", no link followed). */
function nestedTree(base: string, rel: string, log: Logger, visited: Set<string>): string[] {
  const cfgFile = path.join(base, rel);
  let slapos: Map<string, string> | undefined;
  try {
    const body = text(base, rel);
    slapos = body === undefined ? undefined : sectionValues(parseIni(body, cfgFile), 'slapos');
  } catch (error) {
    log.debug({ path: cfgFile, err: error }, 'configuration ignored');
    return [];
  }
  if (!slapos) return [];
  const out: string[] = [];
  const nestedRoot = (slapos.get('shared_part_list') ?? '').split('\n').map((l) => l.trim()).filter(Boolean).at(-1);
  const softwareRoot = slapos.get('software_root')?.trim();
  if (softwareRoot && path.isAbsolute(softwareRoot)) out.push(...softwareUsageTexts(`/${fromRoot(softwareRoot)}`));
  if (nestedRoot && path.isAbsolute(nestedRoot)) out.push(...sharedCandidates(`/${fromRoot(nestedRoot)}`).flatMap((c) => c.signatures));
  const instanceRoot = slapos.get('instance_root')?.trim();
  if (instanceRoot && path.isAbsolute(instanceRoot) && !visited.has(path.resolve(instanceRoot))) {
    visited.add(path.resolve(instanceRoot));
    walkFromRoot(fromRoot(instanceRoot), log, visited, out);
  }
  return out;
}

/** A nested instance_root: walked from "/" (no link followed on the whole path, it comes from a partition). */
function walkFromRoot(rel: string, log: Logger, visited: Set<string>, out: string[]): void {
  for (const entry of listBeneath('/', rel) ?? []) {
    const child = path.join(rel, entry.name);
    if (entry.type === 'directory') walkFromRoot(child, log, visited, out);
    else if (entry.type === 'file' && entry.name === 'slapos.cfg') out.push(...nestedTree('/', child, log, visited));
  }
}

export interface PruneOptions {
  sharedPartList: readonly string[];
  softwareRoot: string;
  instanceRoot: string;
  additionalSoftwareDirectories: readonly string[];
  dryRun: boolean;
  log: Logger;
}

export interface PruneResult {
  root: string;
  removed: string[];
  dryRun: boolean;
}

/** Finds the unused parts of the last shared_part_list entry and removes them (not with dryRun). */
export function pruneSharedParts(options: PruneOptions): PruneResult {
  const root = options.sharedPartList.map((l) => l.trim()).filter(Boolean).at(-1);
  if (root === undefined) throw new Error('No shared_part_list options in slapos config');
  const { log } = options;
  log.warn({ code: 'PRUNE_STARTED', path: root }, 'Pruning shared directories');
  const candidates = sharedCandidates(root);
  const texts = softwareUsageTexts(options.softwareRoot);
  for (const dir of options.additionalSoftwareDirectories) {
    if (listBeneath(dir, '') === undefined) log.warn({ code: 'PRUNE_DIR_MISSING', path: dir }, 'Additional software directory does not exist');
    else texts.push(...softwareUsageTexts(dir));
  }
  texts.push(...nestedUsageTexts(options.instanceRoot, log));
  const removed: string[] = [];
  for (const part of unusedParts(candidates, texts)) {
    const full = path.join(root, part.rel);
    if (!options.dryRun) removeBeneath(root, part.rel);
    log.warn({ code: 'PRUNE_UNUSED', path: full }, options.dryRun ? 'Unused shared parts' : 'Unused shared parts ... removed');
    removed.push(full);
  }
  return { root, removed, dryRun: options.dryRun };
}
