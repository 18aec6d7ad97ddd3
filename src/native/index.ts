// Typed loader for the slapos_native addon (native/*.cc, built by node-gyp
// from binding.gyp during `npm ci`). The addon is loaded lazily so that
// commands that never touch taps or cgroups (the master, the client CLI) still
// work on a machine where the native build is missing.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export type TapType = 'tap' | 'tun';

export interface TapOptions {
  type?: TapType;
  /** Clone device; only tests point it elsewhere. */
  device?: string;
}

export interface TapInfo {
  /** uid allowed to attach, -1 when unset. */
  owner: number;
  /** gid allowed to attach, -1 when unset. */
  group: number;
  type: TapType;
  persist: boolean;
}

export type CgroupFsType = 'cgroup2' | 'cgroup' | 'tmpfs' | 'other';

/** Error thrown by the addon for a failed system call. */
export interface NativeError extends Error {
  errno: number;
  code: string;
  syscall: string;
  target: string;
}

export interface SlaposNative {
  createTap(name: string, options: TapOptions & { uid: number; gid?: number }): string;
  deleteTap(name: string, options?: TapOptions): boolean;
  tapInfo(name: string): TapInfo | null;
  openTap(name: string, options?: TapOptions): number;
  cgroupFsType(path: string): CgroupFsType;
  cgroupMake(path: string): boolean;
  cgroupRemove(path: string): boolean;
  cgroupWrite(path: string, value: string): void;
  cgroupReadValues(paths: readonly string[]): (string | null)[];
  /** lckpwdf(): the user database lock shadow's tools take (waits up to 15 s). */
  lockUserDb(): void;
  /** ulckpwdf(). */
  unlockUserDb(): void;
  /** Opens `rel` beneath the trusted directory `base`, never following a link (native/safefs.cc). */
  openBeneath(base: string, rel: string, flags: number, mode: number, forceWalk?: boolean): number;
  /** openat(dirfd, name, flags | O_NOFOLLOW): one component. */
  openAt(dirfd: number, name: string, flags: number, mode: number): number;
  /** mkdirat: true when created, false when something existed there. */
  mkdirAt(dirfd: number, name: string, mode: number): boolean;
  renameAt(dirfd: number, from: string, to: string): void;
  /** unlinkat: false when absent. */
  unlinkAt(dirfd: number, name: string, isDir: boolean): boolean;
  listAt(dirfd: number): { name: string; type: SafeEntryType }[];
  /** Removes `rel` (or only its content) without following links nor crossing mounts; returns the mount points left. */
  removeTreeBeneath(base: string, rel: string, keepTop: boolean): string[];
  /** pidfd_open(pid): a descriptor, or -1 when the process is gone. */
  pidfdOpen(pid: number): number;
  /** pidfd_send_signal: false when the process has exited meanwhile. */
  pidfdSignal(fd: number, signal: number): boolean;
  /** getsockopt(SO_PEERCRED) of a connected unix socket: the connecting process's pid, uid, gid. */
  peerCredentials(fd: number): { pid: number; uid: number; gid: number };
  /** NETLINK_SOCK_DIAG exact lookup: the uid owning the TCP socket with this local and remote end; undefined when none. */
  tcpSocketUid(localAddress: string, localPort: number, remoteAddress: string, remotePort: number): number | undefined;
  safeFsConstants: { O_PATH: number; O_DIRECTORY: number; O_NOFOLLOW: number; O_NONBLOCK: number; O_CLOEXEC: number; O_NOCTTY: number };
}

export type SafeEntryType = 'file' | 'directory' | 'symlink' | 'fifo' | 'socket' | 'device' | 'unknown';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Where the addon is expected; exported for error messages and tests. */
export const addonPath = path.join(projectRoot, 'build', 'Release', 'slapos_native.node');

/** The launcher every partition process starts through (native/launch.c). */
export const launcherPath = path.join(projectRoot, 'build', 'Release', 'slapos-launch');

/** The executor's handle on one run of the buildout fork server (native/buildout-client.c). */
export const buildoutClientPath = path.join(projectRoot, 'build', 'Release', 'slapos-buildout-client');

let loaded: SlaposNative | undefined;

export function native(): SlaposNative {
  if (loaded) return loaded;
  if (!existsSync(addonPath)) {
    throw new Error(`native addon not built: ${addonPath} is missing; run "npm run build:native" in ${projectRoot}`);
  }
  const require = createRequire(import.meta.url);
  loaded = require(addonPath) as SlaposNative;
  return loaded;
}

export function isNativeError(error: unknown): error is NativeError {
  return error instanceof Error && typeof (error as Partial<NativeError>).errno === 'number';
}
