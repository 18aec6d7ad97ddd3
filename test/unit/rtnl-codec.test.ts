// rtnetlink messages as bytes: what format sends reads back as what it meant.
import test from 'ava';
import {
  AF_INET, AF_INET6, addressMessage, linkByNameRequest, linkMessage, nlattr, parseAddress, parseLink, parseRoute, routeMessage,
  parseTunData, setMasterMessage, setUpMessage,
} from '../../src/network/rtnl-codec.js';
import { parse6 } from '../../src/network/address.js';

test('address messages: family, prefix, index, value and flags', (t) => {
  const v6 = parse6('fd00:1::8001:ffff:ffff:ffff');
  t.deepEqual(parseAddress(addressMessage(AF_INET6, v6, 80, 7, { noprefixroute: true })), {
    index: 7, family: AF_INET6, value: v6, prefixlen: 80, tentative: false, dadfailed: false, noprefixroute: true,
  });
  t.like(parseAddress(addressMessage(AF_INET, 0x0a090002, 32, 3, {})), { index: 3, family: AF_INET, value: 0x0a090002, prefixlen: 32 });
  // A delete carries no IFA_FLAGS; the kernel's tentative/dadfailed bits are read from either place.
  const answer = addressMessage(AF_INET6, v6, 64, 2);
  answer.writeUInt8(0x40 | 0x08, 2);
  t.like(parseAddress(answer), { tentative: true, dadfailed: true, noprefixroute: false });
  t.is(parseAddress(Buffer.concat([Buffer.from([17, 0, 0, 0]), Buffer.alloc(4)])), undefined); // AF_PACKET
});

test('route messages: local routes in the local table, gateway routes in main', (t) => {
  const range = parse6('fd00:1:0:0:4001::');
  t.deepEqual(parseRoute(routeMessage({ family: AF_INET6, dst: range, dstLen: 80, oif: 1, local: true })), {
    family: AF_INET6, table: 255, type: 'LOCAL', dst: range, dstLen: 80, oif: 1,
  });
  const gw = parse6('fd00:1::8001:0:0:1');
  t.deepEqual(parseRoute(routeMessage({ family: AF_INET6, dst: range, dstLen: 80, oif: 9, gateway: gw })), {
    family: AF_INET6, table: 254, type: 'UNICAST', dst: range, dstLen: 80, oif: 9, gateway: gw,
  });
});

test('link messages: up, master, name and kind', (t) => {
  t.like(parseLink(setUpMessage(5)), { index: 5, up: true, lowerUp: false });
  t.like(parseLink(setMasterMessage(5, 2)), { index: 5, master: 2, up: false });
  t.like(parseLink(linkByNameRequest('slaptap0')), { index: 0, name: 'slaptap0' });
  const withKind = linkMessage(4, 0x10001, 0, [nlattr(3, Buffer.from('br0\0')), nlattr(18 | 0x8000, nlattr(1, Buffer.from('bridge\0')))]);
  t.deepEqual(parseLink(withKind), { index: 4, name: 'br0', kind: 'bridge', up: true, lowerUp: true });
});

test('tun links: owner, group, type and persistence from IFLA_INFO_DATA; unset owner and group are -1', (t) => {
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v, 0); return b; };
  const u8 = (v: number) => Buffer.from([v]);
  // IFLA_TUN_OWNER 1, GROUP 2, TYPE 3 (IFF_TUN 1, IFF_TAP 2), PERSIST 6
  const tapData = Buffer.concat([nlattr(1, u32(1234)), nlattr(2, u32(5678)), nlattr(3, u8(2)), nlattr(4, u8(0)), nlattr(6, u8(1))]);
  const tap = linkMessage(9, 0, 0, [nlattr(3, Buffer.from('slaptap0\0')), nlattr(18 | 0x8000, Buffer.concat([nlattr(1, Buffer.from('tun\0')), nlattr(2 | 0x8000, tapData)]))]);
  t.deepEqual(parseLink(tap), { index: 9, name: 'slaptap0', kind: 'tun', up: false, lowerUp: false, tun: { owner: 1234, group: 5678, type: 'tap', persist: true } });
  t.deepEqual(parseTunData(Buffer.concat([nlattr(3, u8(1)), nlattr(6, u8(0))])), { owner: -1, group: -1, type: 'tun', persist: false });
  t.is(parseTunData(nlattr(1, u32(1))), undefined); // no type: sysfs is read instead
  // Another kind's data is not read as a tun's.
  const veth = linkMessage(3, 0, 0, [nlattr(18, Buffer.concat([nlattr(1, Buffer.from('veth\0')), nlattr(2, tapData)]))]);
  t.is(parseLink(veth).tun, undefined);
});
