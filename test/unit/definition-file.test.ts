// `node format -i/-o` definition files (src/format/definition-file.ts): the
// reference's format (slapformat.md §6.4) read, checked against this node's
// names, turned into stored values, and written back.
import test from 'ava';
import type { Dict } from '../../src/format/computer-xml.js';
import { definitionAsStored, definitionProblems, definitionText, parseDefinition } from '../../src/format/definition-file.js';

const NAMES = { partitionBaseName: 'slappart', userBaseName: 'slapuser', tapBaseName: 'slaptap', softwareUser: 'slapsoft', alterNetwork: true };
const TEXT = `[computer]
address = fd00:5a::1/ffff:ffff:ffff:ffff::
software_user = slapsoft

[partition_0]
address = 10.0.0.2/255.255.255.255 fd00:5a::2/ffff:ffff:ffff:ffff::
ipv6_range = fd00:5a:0:0:1::/80
user = slapuser0
network_interface = slaptap0
pathname = slappart0

[partition_1]
address = 10.0.0.3/255.255.255.255 fd00:5a::3/ffff:ffff:ffff:ffff::
user = slapuser1
network_interface = slaptap1
pathname = slappart1
`;

test('a definition file is read per partition, and becomes the stored addresses and ranges', (t) => {
  const definition = parseDefinition(TEXT, 'def.cfg', 2);
  t.deepEqual(definition.address, { addr: 'fd00:5a::1', netmask: 'ffff:ffff:ffff:ffff::' });
  t.is(definition.partitions.length, 2);
  t.like(definition.partitions[0], { pathname: 'slappart0', user: 'slapuser0', networkInterface: 'slaptap0', ipv6Range: { addr: 'fd00:5a:0:0:1::', prefixlen: 80 } });
  t.deepEqual(definitionProblems(definition, NAMES), []);
  const stored = definitionAsStored(definition);
  const [first, second] = stored.partition_list as Record<string, any>[];
  t.deepEqual(first!.address_list, [{ addr: '10.0.0.2', netmask: '255.255.255.255' }, { addr: 'fd00:5a::2', netmask: 'ffff:ffff:ffff:ffff::' }]);
  t.like(first!.ipv6_range, { prefixlen: 80, netmask: 'ffff:ffff:ffff:ffff:ffff::', network: 'fd00:5a:0:0:1::/80' });
  t.deepEqual(second!.ipv6_range, {});
  t.is(stored.address, 'fd00:5a::1');
});

test('written back, a formatted computer reads the same', (t) => {
  const computer = {
    address: 'fd00:5a::1', netmask: 'ffff:ffff:ffff:ffff::', software_user: 'slapsoft',
    partition_list: [0, 1].map((i) => ({
      reference: `slappart${i}`, tap: { name: `slaptap${i}` }, user: { name: `slapuser${i}` },
      address_list: [{ addr: `10.0.0.${i + 2}`, netmask: '255.255.255.255' }, { addr: `fd00:5a::${i + 2}`, netmask: 'ffff:ffff:ffff:ffff::' }],
      ipv6_range: i === 0 ? { addr: 'fd00:5a:0:0:1::', prefixlen: 80, netmask: 'ffff:ffff:ffff:ffff:ffff::', network: 'fd00:5a:0:0:1::/80' } : {},
    })),
  };
  const text = definitionText(computer as unknown as Dict);
  t.is(text, TEXT);
  t.deepEqual(parseDefinition(text, 'out.cfg', 2), parseDefinition(TEXT, 'def.cfg', 2));
});

test('bad input is refused with the file, the section and the reason', (t) => {
  t.throws(() => parseDefinition('[partition_0]\n', 'a.cfg', 1), { message: /a\.cfg: no \[computer\] section \(nothing was changed\)/ });
  t.throws(() => parseDefinition(TEXT, 'a.cfg', 3), { message: /no \[partition_2\] section \(partition_amount is 3\)/ });
  t.throws(() => parseDefinition(TEXT.replace('user = slapuser1\n', ''), 'a.cfg', 2), { message: /\[partition_1\] user is missing/ });
  t.throws(() => parseDefinition(TEXT.replace('10.0.0.3/255.255.255.255', '10.0.0.300/255.255.255.255'), 'a.cfg', 2), { message: /\[partition_1\] address: not ADDRESS\/NETMASK: "10\.0\.0\.300\/255\.255\.255\.255"/ });
  t.throws(() => parseDefinition(TEXT.replace('/80', '/200'), 'a.cfg', 2), { message: /ipv6_range: not IPV6\/PREFIXLEN/ });
  t.throws(() => parseDefinition('[computer\n', 'a.cfg', 1), { message: /^a\.cfg: / });
});

test("names that are not this node's, and address counts alter_network cannot use, are problems", (t) => {
  const other = parseDefinition(TEXT.replace('pathname = slappart1', 'pathname = part1').replace('10.0.0.3/255.255.255.255 ', ''), 'def.cfg', 2);
  t.deepEqual(definitionProblems(other, NAMES), [
    '[partition_1] pathname is part1, this node\'s is slappart1',
    '[partition_1] address: one IPv4 and one IPv6 needed with alter_network, not 1 address(es)',
  ]);
  t.deepEqual(definitionProblems(other, { ...NAMES, alterNetwork: false, partitionBaseName: 'part' }).length, 1);
});
