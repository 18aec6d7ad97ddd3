import test from 'ava';
import { planTap } from '../../src/network/tap.js';

const spec = { name: 'slaptap0', type: 'tap' as const, uid: 1001, gid: 1002 };

test('tap plan: create, fix ownership, or nothing', (t) => {
  t.is(planTap(spec, null), 'create');
  t.is(planTap(spec, { owner: 1001, group: 1002, type: 'tap', persist: true }), 'none');
  t.is(planTap(spec, { owner: 1000, group: 1002, type: 'tap', persist: true }), 'set-owner');
  t.is(planTap(spec, { owner: 1001, group: -1, type: 'tap', persist: true }), 'set-owner');
  t.is(planTap(spec, { owner: 1001, group: 1002, type: 'tap', persist: false }), 'set-owner');
});

test('tap plan: a device of the other kind is an error that says what to do', (t) => {
  t.throws(() => planTap(spec, { owner: 1001, group: 1002, type: 'tun', persist: true }), {
    message: 'slaptap0 exists as a tun device, expected a tap; remove it first',
  });
});
