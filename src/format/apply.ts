// Step 3 of format: execute the plan's steps in order. Each effect is
// idempotent (EEXIST on an add, ENOENT on a delete are success), so a run
// killed anywhere is completed by the next one, which observes and plans again.
import { chmodSync, chownSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmdirSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';
import { CgroupTree } from '../cgroup/group.js';
import type { CgroupLayout } from '../cgroup/layout.js';
import { withLockedUserDb, type UserDbLocation } from '../users/apply.js';
import { AF_INET, AF_INET6, netlinkCode, type IpValue, type Rtnl } from '../network/netlink.js';
import { parse4, parse6 } from './addressing.js';
import { FormatError } from './plan-network.js';
import { usersPlan, type FormatPlan } from './plan.js';
import type { FormatSettings } from './settings.js';
import { describe, type Step } from './steps.js';
import type { Observed } from './observe.js';
import type { Logger } from '../util/log.js';

export interface ApplyContext {
  settings: FormatSettings;
  observed: Observed;
  rtnl?: Rtnl;
  userDb: UserDbLocation;
  log: Logger;
  today: number;
  /** How long to wait for duplicate address detection to finish. */
  dadTimeoutMs?: number;
}

/** Test hook: SIGKILL ourselves after this many steps, to prove crash convergence. */
const KILL_AFTER = Number(process.env.SLAPOS_FORMAT_TEST_KILL_AFTER ?? '0');

function ip(text: string): IpValue {
  return text.includes(':') ? { family: AF_INET6, value: parse6(text) } : { family: AF_INET, value: parse4(text) };
}

function cidr(text: string): { ip: IpValue; len: number } {
  const [addr = '', len = ''] = text.split('/');
  return { ip: ip(addr), len: Number(len) };
}

/** write temp, fsync, rename, fsync the directory: readers see the old or the new file, never a torn one. */
export function writeFileAtomic(file: string, content: string, mode: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = openSync(temp, 'w', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(temp, mode);
  renameSync(temp, file);
  const dirFd = openSync(path.dirname(file), 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

function tolerate(error: unknown, codes: string[]): void {
  const code = netlinkCode(error) ?? (error as NodeJS.ErrnoException).code;
  if (!code || !codes.includes(code)) throw error;
}

export async function applyPlan(plan: FormatPlan, ctx: ApplyContext): Promise<void> {
  const { settings, rtnl, log } = ctx;
  let indexes: Map<string, number> | undefined;
  const indexOf = async (name: string): Promise<number> => {
    if (!rtnl) throw new Error('network changes need netlink');
    // One link dump, refreshed only when a device is missing (new taps): not one dump per tap.
    if (!indexes || !indexes.has(name)) indexes = new Map((await rtnl.links()).map((l) => [l.name, l.index]));
    const index = indexes.get(name);
    if (index === undefined) throw new FormatError(`network device ${name} does not exist`);
    return index;
  };
  const layout = ctx.observed.cgroup?.layout as CgroupLayout | undefined;
  const tree = layout ? new CgroupTree(layout, settings.cgroupParent) : undefined;
  const dadPending: { dev: string; address: bigint; partition: string }[] = [];
  let dadChecked = false;
  let done = 0;

  for (const step of plan.steps) {
    if (!dadChecked && (step.kind === 'write-file' || step.kind === 'cgroup-create')) {
      dadChecked = true;
      if (dadPending.length > 0 && rtnl) await checkDad(rtnl, dadPending, ctx.dadTimeoutMs ?? 5000, log, indexOf);
    }
    log.debug(describe(step));
    await applyStep(step);
    done++;
    if (KILL_AFTER > 0 && done >= KILL_AFTER) process.kill(process.pid, 'SIGKILL');
  }
  if (!dadChecked && dadPending.length > 0 && rtnl) await checkDad(rtnl, dadPending, ctx.dadTimeoutMs ?? 5000, log, indexOf);

  async function applyStep(step: Step): Promise<void> {
    switch (step.kind) {
      case 'users': {
        withLockedUserDb(ctx.userDb, (db) => {
          const fresh = usersPlan(settings, { users: db, idRanges: ctx.observed.idRanges, surplus: ctx.observed.surplus }, ctx.today);
          for (const [name, u] of fresh.users) {
            const planned = plan.owners[name];
            if (planned && (planned.uid !== u.uid || planned.gid !== u.gid)) {
              throw new FormatError(`the user database changed while format was running (${name}); re-run format`);
            }
          }
          return fresh;
        });
        return;
      }
      case 'mkdir':
        mkdirSync(step.path, { recursive: true, mode: step.mode });
        chmodSync(step.path, step.mode); // mkdir's mode is filtered by the umask
        return;
      case 'chmod':
        chmodSync(step.path, step.mode);
        return;
      case 'chown':
        chownSync(step.path, step.uid, step.gid);
        return;
      case 'tap':
        native().createTap(step.name, { type: step.type, uid: step.uid, gid: step.gid });
        return;
      case 'tap-delete':
        native().deleteTap(step.name, { type: step.type });
        indexes?.delete(step.name);
        return;
      case 'link-up':
        await rtnl?.setUp(await indexOf(step.name));
        return;
      case 'link-master':
        await rtnl?.setMaster(await indexOf(step.name), await indexOf(step.master));
        return;
      case 'sysctl':
        writeFileSync(step.file, step.value);
        return;
      case 'addr-add': {
        const value = ip(step.address);
        try {
          await rtnl?.addAddress(await indexOf(step.dev), value, step.prefixlen, { noprefixroute: step.noprefixroute === true });
        } catch (error) {
          tolerate(error, ['EEXIST']);
        }
        if (value.family === AF_INET6 && step.partition) dadPending.push({ dev: step.dev, address: value.value, partition: step.partition });
        return;
      }
      case 'addr-del':
        try {
          await rtnl?.delAddress(await indexOf(step.dev), ip(step.address), step.prefixlen);
        } catch (error) {
          tolerate(error, ['EADDRNOTAVAIL', 'ENOENT', 'ENODEV']);
        }
        return;
      case 'route-add':
      case 'route-del': {
        const dst = cidr(step.dst);
        const route = {
          family: dst.ip.family, dst: dst.ip.value, dstLen: dst.len, oif: await indexOf(step.dev),
          ...(step.gateway ? { gateway: ip(step.gateway).value } : {}), ...(step.local ? { local: true } : {}),
        };
        try {
          if (step.kind === 'route-add') await rtnl?.addRoute(route);
          else await rtnl?.delRoute(route);
        } catch (error) {
          tolerate(error, step.kind === 'route-add' ? ['EEXIST'] : ['ESRCH', 'ENOENT']);
        }
        return;
      }
      case 'cgroup-create':
        tree?.create(step.name);
        return;
      case 'cgroup-write':
        native().cgroupWrite(step.file, step.value);
        return;
      case 'cgroup-remove':
        tree?.remove(step.name);
        return;
      case 'write-file':
        writeFileAtomic(step.path, step.content, step.mode);
        return;
      case 'remove-partition-dir':
        try {
          unlinkSync(path.join(step.path, '.slapos-resource'));
        } catch (error) {
          tolerate(error, ['ENOENT']);
        }
        try {
          rmdirSync(step.path);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOTEMPTY') {
            throw new FormatError(`${step.path} received data while format was removing it; it was kept, re-run format`);
          }
          tolerate(error, ['ENOENT']);
        }
        return;
    }
  }
}

/**
 * Duplicate address detection, read from the kernel's address flags: wait
 * while new addresses are "tentative", fail for those marked "dadfailed"
 * (another host uses them), removing them so a later run can retry. On a link
 * without carrier DAD cannot run: we warn instead of waiting.
 */
async function checkDad(
  rtnl: Rtnl,
  pending: { dev: string; address: bigint; partition: string }[],
  timeoutMs: number,
  log: Logger,
  indexOf: (name: string) => Promise<number>,
): Promise<void> {
  const links = await rtnl.links();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const addresses = await rtnl.addresses();
    const state = pending.map((p) => {
      const index = links.find((l) => l.name === p.dev)?.index;
      return { p, a: addresses.find((a) => a.index === index && a.family === AF_INET6 && a.value === p.address) };
    });
    const failed = state.filter((s) => s.a?.dadfailed);
    if (failed.length > 0) {
      for (const { p, a } of failed) {
        try {
          await rtnl.delAddress(await indexOf(p.dev), { family: AF_INET6, value: p.address }, a?.prefixlen ?? 64);
        } catch {
          // already gone
        }
      }
      throw new FormatError(
        `duplicate address detection failed (the address is used elsewhere on the network) for ${failed
          .map(({ p }) => `${p.partition} (${p.dev})`).join(', ')}; free these addresses or change the prefix, then re-run`,
      );
    }
    const tentative = state.filter((s) => s.a?.tentative);
    if (tentative.length === 0) return;
    const noCarrier = tentative.filter(({ p }) => !links.find((l) => l.name === p.dev)?.lowerUp);
    if (noCarrier.length === tentative.length) {
      log.warn(`${tentative.length} new IPv6 addresses stay tentative: ${tentative[0]?.p.dev} has no carrier, so duplicate detection cannot run yet; the next format run checks them`);
      return;
    }
    if (Date.now() > deadline) {
      log.warn(`${tentative.length} new IPv6 addresses are still tentative after ${timeoutMs} ms; the next format run checks them`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
