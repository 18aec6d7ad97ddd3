// Partition taps (and tuns): persistent devices owned by the partition user.
// Creation is an ioctl on /dev/net/tun (native/tap.cc): rtnetlink cannot make
// tun/tap devices. Bringing them up, bridging and addressing is netlink's job.
import { native, type TapInfo, type TapType } from '../native/index.js';

export interface TapSpec {
  name: string;
  type: TapType;
  uid: number;
  gid: number;
}

export type TapAction = 'create' | 'set-owner' | 'none';

/** What has to happen for the device to match the spec. Pure. */
export function planTap(spec: TapSpec, current: TapInfo | null): TapAction {
  if (current === null) return 'create';
  if (current.type !== spec.type) {
    throw new Error(`${spec.name} exists as a ${current.type} device, expected a ${spec.type}; remove it first`);
  }
  if (current.owner !== spec.uid || current.group !== spec.gid || !current.persist) return 'set-owner';
  return 'none';
}

/** Makes the device exist, persistent, owned by uid/gid. Returns what was done. */
export function ensureTap(spec: TapSpec): TapAction {
  const addon = native();
  const action = planTap(spec, addon.tapInfo(spec.name));
  if (action !== 'none') addon.createTap(spec.name, { type: spec.type, uid: spec.uid, gid: spec.gid });
  return action;
}

/** Deletes the device if it exists. Returns true if it existed. */
export function removeTap(name: string): boolean {
  const addon = native();
  const info = addon.tapInfo(name);
  if (info === null) return false;
  return addon.deleteTap(name, { type: info.type });
}

export function tapInfo(name: string): TapInfo | null {
  return native().tapInfo(name);
}
