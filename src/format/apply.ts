// Step 3 of format: execute the plan's steps in order. Each effect is
// idempotent (EEXIST on an add, ENOENT on a delete are success), so a run
// killed anywhere is completed by the next one, which observes and plans again.
import { chmodSync, chownSync, mkdirSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { native } from '../native/index.js';
import { CgroupTree } from '../cgroup/group.js';
import type { CgroupLayout } from '../cgroup/layout.js';
import { UserDbLockedError, withLockedUserDb, type UserDbLocation } from '../users/apply.js';
import { AF_INET, AF_INET6, netlinkCode, type IpValue, type Rtnl } from '../network/netlink.js';
import { parse4, parse6 } from './addressing.js';
import { FormatError, UserDbChangedError } from './plan-network.js';
import type { UserDb } from '../users/db.js';
import { usersPlan, type FormatPlan } from './plan.js';
import type { FormatSettings } from './settings.js';
import { describe, type Step } from './steps.js';
import { checkDad, type DadPending } from './dad.js';
import { writeFileAtomic, writeFilesAtomic, type FileWrite } from './files.js';
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

/**
 * Test hook: SIGKILL ourselves after this many steps, to prove crash
 * convergence. A batch of .slapos-resource writes is one boundary that counts
 * as its files: the line written first says which boundary was reached, so a
 * test can walk every boundary once (docs/design.md, "Commits and their
 * boundaries").
 */
const KILL_AFTER = Number(process.env.SLAPOS_FORMAT_TEST_KILL_AFTER ?? '0');

function ip(text: string): IpValue {
  return text.includes(':') ? { family: AF_INET6, value: parse6(text) } : { family: AF_INET, value: parse4(text) };
}

function cidr(text: string): { ip: IpValue; len: number } {
  const [addr = '', len = ''] = text.split('/');
  return { ip: ip(addr), len: Number(len) };
}

function tolerate(error: unknown, codes: string[]): void {
  const code = netlinkCode(error) ?? (error as NodeJS.ErrnoException).code;
  if (!code || !codes.includes(code)) throw error;
}

/** Netlink steps in flight at once: their acks (under 1 KiB each) must fit the socket's receive buffer. */
const NETLINK_WINDOW = 64;

/**
 * Netlink requests are sent without waiting for each answer: the kernel
 * applies each request while it is being sent, so they still take effect in
 * plan order; answers are collected in batches. The first failure, in plan
 * order, is thrown.
 */
class NetlinkPipeline {
  private pending: Promise<void>[] = [];

  async add(request: Promise<void>): Promise<void> {
    request.catch(() => undefined); // handled by drain(), even when an earlier batch failed first
    this.pending.push(request);
    if (this.pending.length >= NETLINK_WINDOW) await this.drain();
  }

  async drain(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const results = await Promise.allSettled(batch);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

const NETLINK_KINDS = new Set<Step['kind']>(['link-up', 'link-master', 'addr-add', 'addr-del', 'route-add', 'route-del']);

/** Milliseconds spent per step kind, plus the netlink answers and the DAD wait: for the log. */
export type ApplyTiming = Record<string, number>;

export async function applyPlan(plan: FormatPlan, ctx: ApplyContext): Promise<ApplyTiming> {
  const { settings, rtnl, log } = ctx;
  // Indexes as observed; a device created by this run is looked up by name once.
  const indexes = new Map(ctx.observed.links.map((l) => [l.name, l.index]));
  const indexOf = async (name: string): Promise<number> => {
    if (!rtnl) throw new Error('network changes need netlink');
    let index = indexes.get(name);
    if (index === undefined) {
      index = (await rtnl.link(name))?.index;
      if (index === undefined) throw new FormatError(`network device ${name} does not exist`);
      indexes.set(name, index);
    }
    return index;
  };
  const layout = ctx.observed.cgroup?.layout as CgroupLayout | undefined;
  const tree = layout ? new CgroupTree(layout, settings.cgroupParent) : undefined;
  const pipeline = new NetlinkPipeline();
  const dadPending: DadPending[] = [];
  const timing: ApplyTiming = {};
  const time = async (what: string, fn: () => Promise<void> | void) => {
    const started = performance.now();
    await fn();
    timing[what] = (timing[what] ?? 0) + performance.now() - started;
  };
  const dad = async () => {
    await time('netlink-answers', () => pipeline.drain());
    if (rtnl) await time('dad-wait', () => checkDad(rtnl, dadPending, ctx.dadTimeoutMs ?? 5000, log));
    dadPending.length = 0;
  };
  let dadChecked = false;
  let done = 0;
  const debug = log.isLevelEnabled('debug');
  const countStep = async (n = 1) => {
    done += n;
    if (KILL_AFTER > 0 && done >= KILL_AFTER) {
      await pipeline.drain();
      process.stderr.write(`test kill point: format killed after step ${done} of ${plan.steps.length}\n`);
      process.kill(process.pid, 'SIGKILL');
    }
  };
  // Consecutive .slapos-resource writes go together (their fsyncs overlap).
  let batch: FileWrite[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const files = batch;
    batch = [];
    await time('write-file', () => writeFilesAtomic(files));
    await countStep(files.length);
  };
  const isStateFile = (file: string) => file === settings.computerXml || file === settings.computerJson;

  for (const step of plan.steps) {
    if (debug) log.debug(describe(step));
    if (NETLINK_KINDS.has(step.kind)) {
      await flush();
      await time(step.kind, () => applyStep(step));
      await countStep();
      continue;
    }
    await time('netlink-answers', () => pipeline.drain()); // the other effects may depend on them
    if (step.kind === 'write-file' && !isStateFile(step.path)) {
      batch.push(step);
      continue;
    }
    await flush();
    // The computer's state is written (and then reported) only once the new
    // addresses are known not to be duplicates; the kernel ran DAD meanwhile.
    if (!dadChecked && step.kind === 'write-file') {
      dadChecked = true;
      await dad();
    }
    await time(step.kind, () => applyStep(step));
    await countStep();
  }
  await flush();
  if (!dadChecked) await dad();
  return timing;

  async function applyStep(step: Step): Promise<void> {
    switch (step.kind) {
      case 'users': {
        // Another node's format (or useradd) holding the lock is contention, not an error: planned again after a backoff.
        try {
          withLockedUserDb(ctx.userDb, (db) => {
            const fresh = usersPlan(settings, { users: db, idRanges: ctx.observed.idRanges, surplus: ctx.observed.surplus }, ctx.today);
            for (const [name, u] of fresh.users) {
              const planned = plan.owners[name];
              if (planned && (planned.uid !== u.uid || planned.gid !== u.gid)) {
                throw new UserDbChangedError(`the user database changed while format was running (${name}: ${idTakenBy(db, planned)})`);
              }
            }
            return fresh;
          });
        } catch (error) {
          if (error instanceof UserDbLockedError) throw new UserDbChangedError(`the user database is busy (${error.message})`);
          throw error;
        }
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
        indexes.delete(step.name);
        return;
      case 'link-up':
        if (rtnl) await pipeline.add(rtnl.setUp(await indexOf(step.name)));
        return;
      case 'link-master':
        if (rtnl) await pipeline.add(rtnl.setMaster(await indexOf(step.name), await indexOf(step.master)));
        return;
      case 'sysctl':
        writeFileSync(step.file, step.value);
        return;
      case 'addr-add': {
        const value = ip(step.address);
        if (!rtnl) return;
        const request = rtnl.addAddress(await indexOf(step.dev), value, step.prefixlen, { noprefixroute: step.noprefixroute === true });
        await pipeline.add(request.catch((error: unknown) => tolerate(error, ['EEXIST'])));
        if (value.family === AF_INET6 && step.partition) dadPending.push({ dev: step.dev, address: value.value, partition: step.partition });
        return;
      }
      case 'addr-del': {
        if (!rtnl) return;
        const request = rtnl.delAddress(await indexOf(step.dev), ip(step.address), step.prefixlen);
        await pipeline.add(request.catch((error: unknown) => tolerate(error, ['EADDRNOTAVAIL', 'ENOENT', 'ENODEV'])));
        return;
      }
      case 'route-add':
      case 'route-del': {
        const dst = cidr(step.dst);
        const route = {
          family: dst.ip.family, dst: dst.ip.value, dstLen: dst.len, oif: await indexOf(step.dev),
          ...(step.gateway ? { gateway: ip(step.gateway).value } : {}), ...(step.local ? { local: true } : {}),
        };
        if (!rtnl) return;
        const request = step.kind === 'route-add' ? rtnl.addRoute(route) : rtnl.delRoute(route);
        await pipeline.add(request.catch((error: unknown) => tolerate(error, step.kind === 'route-add' ? ['EEXIST'] : ['ESRCH', 'ENOENT'])));
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
 * Who holds the ids planned for a user now, from the entries themselves (the
 * other tool's user or group, e.g. "uid 1234 is now user ci-runner"), so that the
 * operator can tell which tool raced format. Pure.
 */
export function idTakenBy(db: UserDb, planned: { uid: number; gid: number }): string {
  const holders: string[] = [];
  const user = db.passwd.lines.find((f) => f.length >= 4 && Number(f[2]) === planned.uid);
  if (user) holders.push(`uid ${planned.uid} is now user ${user[0]}`);
  const group = db.group.lines.find((f) => f.length >= 3 && Number(f[2]) === planned.gid);
  if (group) holders.push(`gid ${planned.gid} is now group ${group[0]}`);
  return holders.length > 0 ? `${holders.join(', ')}, added by another tool` : `planned uid ${planned.uid} / gid ${planned.gid} no longer free`;
}
