// What a cached release's tarball may contain (pure; the extraction worker
// applies it member by member). Everything must be below "<hash>/"; refused:
// absolute names, ".." components, devices and FIFOs, members reached through
// a link of the archive, symbolic links that could point outside the release,
// hard links to anything but a regular file already extracted, duplicates,
// and more members or bytes than the limits (a tar bomb).
import path from 'node:path';
import type { ExtractLimits } from './settings.js';

/**
 * Written by the extraction worker into the release after its last member,
 * before the rename: a release directory holding it (and no `.completed`) is
 * a whole extracted tree whose run was killed before reporting it. Never
 * taken from an archive (skipped), never uploaded.
 */
export const EXTRACTED_MARKER = '.slapos-cache-extracted';

export class RefusedMember extends Error {
  override name = 'RefusedMember';
  constructor(readonly member: string, reason: string) {
    super(`refused archive member ${JSON.stringify(member.slice(0, 300))}: ${reason}`);
  }
}

export interface MemberHeader {
  name: string;
  type: string | null | undefined;
  linkname?: string | null | undefined;
  size?: number | null | undefined;
}

export type Decision =
  | { kind: 'directory'; rel: string }
  | { kind: 'file'; rel: string; size: number }
  | { kind: 'symlink'; rel: string; target: string }
  | { kind: 'hardlink'; rel: string; target: string };

/** A name's components, or the reason it is refused. */
function components(name: string): string[] | string {
  if (name.startsWith('/')) return 'absolute name';
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return '".." component';
  if (parts.some((p) => p.includes('\0'))) return 'NUL in name';
  return parts;
}

export class MemberPolicy {
  private members = 0;
  private bytes = 0;
  private readonly links = new Set<string>();
  private readonly files = new Set<string>();
  private readonly seen = new Set<string>();

  /** `releasePath`: the release's absolute path on this node (absolute link targets must stay below it). */
  constructor(readonly hash: string, readonly releasePath: string, readonly limits: ExtractLimits) {}

  check(header: MemberHeader): Decision {
    const parts = components(header.name);
    if (typeof parts === 'string') throw new RefusedMember(header.name, parts);
    if (parts[0] !== this.hash) throw new RefusedMember(header.name, `outside the release directory ${this.hash}/`);
    const rel = parts.join('/');
    this.members += 1;
    if (this.members > this.limits.maxMembers) throw new RefusedMember(header.name, `more than ${this.limits.maxMembers} members (a tar bomb?)`);
    for (let i = 1; i < parts.length; i += 1) {
      if (this.links.has(parts.slice(0, i).join('/'))) throw new RefusedMember(header.name, 'below a link of the archive');
    }
    const type = header.type ?? 'file';
    if (type !== 'directory') {
      if (this.seen.has(rel)) throw new RefusedMember(header.name, 'appears twice');
      if (parts.length === 1) throw new RefusedMember(header.name, 'the release directory itself must be a directory');
    }
    this.seen.add(rel);
    switch (type) {
      case 'directory':
        return { kind: 'directory', rel };
      case 'file':
      case 'contiguous-file': {
        const size = header.size ?? 0;
        this.bytes += size;
        if (this.bytes > this.limits.maxBytes) throw new RefusedMember(header.name, `more than ${this.limits.maxBytes} bytes of content (a tar bomb?)`);
        this.files.add(rel);
        return { kind: 'file', rel, size };
      }
      case 'symlink': {
        const target = header.linkname ?? '';
        const why = this.symlinkProblem(parts, target);
        if (why) throw new RefusedMember(header.name, why);
        this.links.add(rel);
        return { kind: 'symlink', rel, target };
      }
      case 'link': {
        const targetParts = components(header.linkname ?? '');
        if (typeof targetParts === 'string') throw new RefusedMember(header.name, `hard link target: ${targetParts}`);
        const target = targetParts.join('/');
        if (!this.files.has(target)) throw new RefusedMember(header.name, 'hard link to something other than a regular file of the archive extracted before it');
        this.files.add(rel);
        return { kind: 'hardlink', rel, target };
      }
      case 'character-device':
      case 'block-device':
        throw new RefusedMember(header.name, 'device node');
      case 'fifo':
        throw new RefusedMember(header.name, 'FIFO');
      default:
        throw new RefusedMember(header.name, `unsupported member type ${type}`);
    }
  }

  /**
   * A link target is safe when it stays below the release whatever the
   * links it goes through: absolute targets below the release path without
   * "..", relative ones with ".." only at their start, climbing no higher
   * than the release directory (links are only created in real directories).
   */
  private symlinkProblem(parts: string[], target: string): string | undefined {
    if (target === '' || target.includes('\0')) return 'empty link target';
    if (target.startsWith('/')) {
      const normal = path.posix.normalize(target);
      if (target.split('/').includes('..')) return `link to ${target}: ".." in an absolute target`;
      if (normal !== this.releasePath && !normal.startsWith(`${this.releasePath}/`)) return `link to ${target}, outside the release`;
      return undefined;
    }
    const targetParts = target.split('/').filter((p) => p !== '' && p !== '.');
    let climb = 0;
    while (targetParts[climb] === '..') climb += 1;
    if (targetParts.slice(climb).includes('..')) return `link to ${target}: ".." after a name`;
    // The link sits in parts[0..-1]; it may climb up to the release directory (parts[0]), not above.
    const depth = parts.length - 2;
    if (climb > depth) return `link to ${target}, outside the release`;
    return undefined;
  }

  get totals(): { members: number; bytes: number } {
    return { members: this.members, bytes: this.bytes };
  }
}
