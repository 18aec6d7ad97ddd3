// native/tap.cc for real, inside a network namespace made by the test.
import test from 'ava';
import path from 'node:path';
import { createNetns, createUser, isRoot, jsonInNetns, privateTunDevice, repoRoot, runInNetns } from '../helpers/system.js';

const rootOnly = isRoot ? test.serial : test.skip;

rootOnly('a tap made for a user is owned by it, persists, opens for it only, and is deleted', (t) => {
  const netns = createNetns(t);
  const owner = createUser(t);
  const stranger = createUser(t);
  const device = privateTunDevice(t);

  // Created by one process, which then exits.
  const created = jsonInNetns<{ name: string; info: unknown }>(
    netns,
    `const { native } = await import(NATIVE);
     const n = native();
     const name = n.createTap('slaptap0', { type: 'tap', uid: ${owner.uid}, gid: ${owner.gid} });
     console.log(JSON.stringify({ name, info: n.tapInfo('slaptap0') }));`,
  );
  t.is(created.name, 'slaptap0');
  t.deepEqual(created.info, { owner: owner.uid, group: owner.gid, type: 'tap', persist: true });

  // Still there from another process: persistent.
  const later = jsonInNetns<unknown>(netns, `const { native } = await import(NATIVE); console.log(JSON.stringify(native().tapInfo('slaptap0')));`);
  t.deepEqual(later, { owner: owner.uid, group: owner.gid, type: 'tap', persist: true });

  // Its owner can attach to it; another user cannot (the kernel says EPERM).
  const openAs = `const { native } = await import(NATIVE);
    const fs = await import('node:fs');
    try { const fd = native().openTap('slaptap0', { device: ${JSON.stringify(device)} }); fs.closeSync(fd); console.log(JSON.stringify({ ok: true })); }
    catch (e) { console.log(JSON.stringify({ ok: false, code: e.code, syscall: e.syscall, target: e.target })); }`;
  t.deepEqual(jsonInNetns(netns, openAs, owner), { ok: true });
  t.deepEqual(jsonInNetns(netns, openAs, stranger), { ok: false, code: 'EPERM', syscall: 'TUNSETIFF', target: 'slaptap0' });

  // Re-creating is idempotent and can change the owner.
  const rechown = jsonInNetns<unknown>(
    netns,
    `const { native } = await import(NATIVE); const n = native();
     n.createTap('slaptap0', { type: 'tap', uid: ${stranger.uid}, gid: ${stranger.gid} });
     console.log(JSON.stringify(n.tapInfo('slaptap0')));`,
  );
  t.deepEqual(rechown, { owner: stranger.uid, group: stranger.gid, type: 'tap', persist: true });

  // Deleted, and deleting again is a no-op.
  const deleted = jsonInNetns<unknown>(
    netns,
    `const { native } = await import(NATIVE); const n = native();
     const first = n.deleteTap('slaptap0'); const second = n.deleteTap('slaptap0');
     console.log(JSON.stringify({ first, second, info: n.tapInfo('slaptap0') }));`,
  );
  t.deepEqual(deleted, { first: true, second: false, info: null });
  t.notRegex(runInNetns(netns, `const os = await import('node:os'); console.log(Object.keys(os.networkInterfaces()).join(' '));`).stdout, /slaptap0/);
});

rootOnly('a tun device is created as a tun, and a tap of the same name is refused', (t) => {
  const netns = createNetns(t);
  const user = createUser(t);
  const result = jsonInNetns<{ info: unknown; clash: unknown }>(
    netns,
    `const { native } = await import(NATIVE); const n = native();
     n.createTap('slaptun0', { type: 'tun', uid: ${user.uid} });
     let clash;
     try { n.createTap('slaptun0', { type: 'tap', uid: ${user.uid} }); clash = 'accepted'; }
     catch (e) { clash = { code: e.code, syscall: e.syscall, message: e.message }; }
     const info = n.tapInfo('slaptun0');
     n.deleteTap('slaptun0', { type: 'tun' });
     console.log(JSON.stringify({ info, clash, after: n.tapInfo('slaptun0') }));`,
  );
  t.deepEqual(result.info, { owner: user.uid, group: -1, type: 'tun', persist: true });
  t.like(result.clash as object, { code: 'EINVAL', syscall: 'TUNSETIFF' });
  t.regex((result.clash as { message: string }).message, /TUNSETIFF slaptun0: /);
});

rootOnly('bad arguments are rejected before any system call', (t) => {
  const netns = createNetns(t);
  const result = jsonInNetns<string[]>(
    netns,
    `const { native } = await import(NATIVE); const n = native(); const out = [];
     for (const f of [() => n.createTap('x'.repeat(16), { uid: 0 }), () => n.createTap('a/b', { uid: 0 }),
                      () => n.createTap('ok0', {}), () => n.createTap('ok0', { uid: -5 }), () => n.createTap('ok0', { uid: 0, type: 'eth' })]) {
       try { f(); out.push('accepted'); } catch (e) { out.push(e.constructor.name + ': ' + e.message); }
     }
     console.log(JSON.stringify(out));`,
  );
  t.is(result.length, 5);
  for (const message of result) t.regex(message, /^TypeError: /);
  t.regex(result[0] ?? '', /1 to 15 bytes/);
  t.regex(result[4] ?? '', /'tap' or 'tun'/);
});

rootOnly('the link dump carries each tun/tap device\'s owner, group, type and persistence, as sysfs shows them', (t) => {
  // format reads them from the one dump (IFLA_TUN_*) instead of 3 sysfs files per device.
  const netns = createNetns(t);
  const user = createUser(t);
  const netlink = JSON.stringify(new URL(`file://${path.join(repoRoot, 'dist', 'src', 'network', 'netlink.js')}`).href);
  const result = jsonInNetns<{ sysfs: unknown[]; dump: unknown[]; bridge: unknown }>(
    netns,
    `const { native } = await import(NATIVE); const { Rtnl } = await import(${netlink}); const n = native();
     n.createTap('slttap0', { type: 'tap', uid: ${user.uid}, gid: ${user.gid} });
     n.createTap('slttun0', { type: 'tun', uid: ${user.uid} });
     const rtnl = new Rtnl(); const links = await rtnl.links(); rtnl.close();
     const names = ['slttap0', 'slttun0'];
     console.log(JSON.stringify({ sysfs: names.map((x) => n.tapInfo(x)), dump: names.map((x) => links.find((l) => l.name === x)?.tun ?? null),
       bridge: links.find((l) => l.name === 'lo')?.tun ?? null }));
     n.deleteTap('slttap0', { type: 'tap' }); n.deleteTap('slttun0', { type: 'tun' });`,
  );
  t.deepEqual(result.sysfs, [{ owner: user.uid, group: user.gid, type: 'tap', persist: true }, { owner: user.uid, group: -1, type: 'tun', persist: true }]);
  t.deepEqual(result.dump, result.sysfs);
  t.is(result.bridge, null); // not a tun device: nothing read
});
