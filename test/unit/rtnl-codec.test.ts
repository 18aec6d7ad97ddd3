// rtnetlink messages as bytes: what format sends reads back as what it meant.
import test from 'ava';
import {
  AF_INET, AF_INET6, addressMessage, linkByNameRequest, linkMessage, nlattr, parseAddress, parseLink, parseRoute, routeMessage,
  setMasterMessage, setUpMessage,
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
