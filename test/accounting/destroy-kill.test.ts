// Destruction is a chain of idempotent steps (src/accounting/destroy.ts):
// killed after each of them (DESTROY_KILL_POINTS), the next run ends with the
// same partition as an uninterrupted one (emptied, its supervisord files and
// certificates gone, its cgroup reset), also when that run finds nothing left
// to do but the last steps.
import test from 'ava';
import { execa } from 'execa';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CgroupTree } from '../../src/cgroup/group.js';
import { DESTROY_KILL_POINTS, destroyKillPoint, destroyPartition, type DestroyContext } from '../../src/accounting/destroy.js';
import { ensureSupervisord } from '../../src/supervisor/daemon.js';
import { createUser, isRoot, repoRoot } from '../helpers/system.js';
import { stopSupervisordAtTeardown } from '../supervisor/helpers.js';
import { log, makeNode } from './helpers.js';

const rootTest = isRoot ? test.serial : test.skip;

rootTest('killed after every step of a destruction: the next run converges to the uninterrupted result', async (t) => {
  const user = createUser(t);
  const node = makeNode(t, [{ id: 'slappart0', user }]);
  stopSupervisordAtTeardown(t, node.instanceRoot);
  const { paths } = await ensureSupervisord(node.instanceRoot, { log });
  const p0 = node.partitionPath('slappart0');
  const outside = path.join(node.dir, 'outside');
  mkdirSync(outside);
  chmodSync(outside, 0o777);
  const certs = path.join(node.dir, 'certs');
  mkdirSync(certs, { mode: 0o700 });
  const target = { id: 'slappart0', path: p0, user: { ...user, home: p0 } };
  const ctxJson = {
    supervisor: { socket: paths.socket, includeDir: paths.includeDir }, certificateRepository: certs,
    cgroupParent: node.settings.cgroupParent, scriptTimeoutMs: 20_000, prermWaitMs: 20_000,
  };
  const ctx: DestroyContext = {
    log, supervisor: ctxJson.supervisor, certificateRepository: certs, cgroups: new CgroupTree(node.tree.layout, node.settings.cgroupParent),
    scriptTimeoutMs: ctxJson.scriptTimeoutMs, prermWaitMs: ctxJson.prermWaitMs,
  };

  /** A partition to destroy: a supervisord program, a prerm script, sbin/destroy, data, certificates; optionally a retention lock. */
  const prepare = (retentionDays?: string) => {
    for (const file of ['prerm-ran', 'destroy-ran']) rmSync(path.join(outside, file), { force: true });
    const script = (rel: string, text: string) => {
      mkdirSync(path.dirname(path.join(p0, rel)), { recursive: true });
      writeFileSync(path.join(p0, rel), `#!/bin/sh\n${text}\n`, { mode: 0o755 });
    };
    script('bin/daemon', 'exec sleep 600');
    script('etc/prerm/backup', `echo x >> ${outside}/prerm-ran`);
    script('sbin/destroy', `echo x >> ${outside}/destroy-ran`);
    mkdirSync(path.join(p0, 'srv', 'deep'), { recursive: true });
    writeFileSync(path.join(p0, 'srv', 'deep', 'data'), 'x');
    if (retentionDays) writeFileSync(path.join(p0, '.slapos-retention-lock-delay'), retentionDays);
    for (const dir of ['bin', 'etc', 'etc/prerm', 'sbin', 'srv', 'srv/deep']) chownSync(path.join(p0, dir), user.uid, user.gid);
    writeFileSync(path.join(paths.includeDir, 'slappart0.conf'),
      `[group:slappart0]\nprograms=slappart0_daemon\n[program:slappart0_daemon]\ncommand=${p0}/bin/daemon\nprocess_name=daemon\nuser=${user.uid}\nautostart=false\n`);
    for (const ext of ['crt', 'key']) writeFileSync(path.join(certs, `slappart0.${ext}`), ext);
  };
  const killedRun = (point: string) => {
    const destroy = path.join(repoRoot, 'dist', 'src', 'accounting', 'destroy.js');
    const group = path.join(repoRoot, 'dist', 'src', 'cgroup', 'group.js');
    const layout = path.join(repoRoot, 'dist', 'src', 'cgroup', 'layout.js');
    const script = `
      const { destroyPartition } = await import(${JSON.stringify(destroy)});
      const { CgroupTree } = await import(${JSON.stringify(group)});
      const { detectLayout } = await import(${JSON.stringify(layout)});
      const { pino } = await import('pino');
      const c = ${JSON.stringify(ctxJson)};
      await destroyPartition(${JSON.stringify(target)}, { ...c, log: pino({ level: 'silent' }), cgroups: new CgroupTree(detectLayout(), c.cgroupParent) });
    `;
    return execa(process.execPath, ['--input-type=module', '-e', script], { reject: false, cwd: repoRoot, env: { SLAPOS_TEST_KILL_AT: point } });
  };
  const destroyedState = () => ({
    entries: readdirSync(p0),
    conf: readdirSync(paths.includeDir).filter((f) => f.startsWith('slappart0')),
    certs: readdirSync(certs),
    processes: node.tree.processes('slappart0'),
  });

  prepare();
  t.is(await destroyPartition(target, ctx), 'destroyed');
  const expected = destroyedState();
  t.deepEqual(expected, { entries: ['.slapos-resource'], conf: [], certs: [], processes: [] });

  for (const point of DESTROY_KILL_POINTS) {
    const locked = point === destroyKillPoint('write retention date');
    prepare(locked ? '1' : undefined);
    const child = await killedRun(point);
    t.is(child.signal, 'SIGKILL', `${point}: ${child.stderr}`);
    if (locked) {
      // The next run keeps the lock the killed one dated; removing the lock by hand lets it finish.
      t.is(await destroyPartition(target, ctx), 'locked', point);
      t.true(Number(readFileSync(path.join(p0, '.slapos-retention-lock-date'), 'utf8')) > Date.now() / 1000, point);
      rmSync(path.join(p0, '.slapos-retention-lock-delay'));
      rmSync(path.join(p0, '.slapos-retention-lock-date'));
    }
    t.is(await destroyPartition(target, ctx), 'destroyed', point);
    t.deepEqual(destroyedState(), expected, `${point}: same partition as an uninterrupted destruction`);
    t.true(existsSync(path.join(outside, 'prerm-ran')), `${point}: etc/prerm ran`);
    t.true(existsSync(path.join(outside, 'destroy-ran')), `${point}: sbin/destroy ran`);
    // A run on the destroyed partition (an empty plan) changes nothing.
    t.is(await destroyPartition(target, ctx), 'destroyed', point);
    t.deepEqual(destroyedState(), expected, `${point}: a second run is a no-op`);
  }
});
