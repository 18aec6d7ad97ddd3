// `node format -o` writes the formatted computer as the reference's definition
// file; `-i` takes the partitions' addresses from one (an edited address is
// applied), and a file naming other partitions is refused with nothing changed.
// In a namespace (formatEnv); the master is unreachable (exit 2: formatted, not reported).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseDefinition } from '../../src/format/definition-file.js';
import { formatCli, formatEnv } from '../helpers/format.js';
import { isRoot } from '../helpers/system.js';

const rootTest = isRoot ? test.serial : test.skip;

rootTest('-o writes the definition; -i applies an edited address; a foreign layout is refused, nothing changed', async (t) => {
  const env = formatEnv(t, { kind: 'bridge' }, { partition_amount: '2', create_tap: 'false' });
  const out = path.join(env.dir, 'definition.cfg');
  const first = await formatCli(env, ['-o', out]);
  t.true(first.status === 0 || first.status === 2, first.stderr);
  const written = parseDefinition(readFileSync(out, 'utf8'), out, 2);
  t.deepEqual(written.partitions.map((p) => [p.pathname, p.user, p.networkInterface]), [0, 1].map((i) => [`${env.prefix}p${i}`, `${env.prefix}u${i}`, `${env.prefix}t${i}`]));
  for (const p of written.partitions) t.is(p.addresses.length, 2, 'its IPv4 and its IPv6');

  // The operator moves partition 1 to another local IPv4 of the network.
  const old = written.partitions[1]!.addresses.find((a) => !a.addr.includes(':'))!.addr;
  const moved = old === '10.9.0.77' ? '10.9.0.78' : '10.9.0.77';
  const edited = path.join(env.dir, 'edited.cfg');
  writeFileSync(edited, readFileSync(out, 'utf8').replace(`${old}/`, `${moved}/`));
  const second = await formatCli(env, ['-i', edited]);
  t.true(second.status === 0 || second.status === 2, second.stderr);
  const state = JSON.parse(readFileSync(path.join(env.dir, 'slapos.json'), 'utf8')) as { partition_list: { address_list: { addr: string }[] }[] };
  t.true(state.partition_list[1]!.address_list.some((a) => a.addr === moved), JSON.stringify(state.partition_list[1]));
  const addresses = spawnSync('ip', ['-n', env.netns, '-4', '-o', 'addr', 'show', 'dev', 'slapif0'], { encoding: 'utf8' }).stdout;
  t.regex(addresses, new RegExp(`inet ${moved.replaceAll('.', '\\.')}/32`));

  // Names that are not this node's: refused whole, the state file untouched.
  const before = readFileSync(path.join(env.dir, 'slapos.json'), 'utf8');
  const foreign = path.join(env.dir, 'foreign.cfg');
  writeFileSync(foreign, readFileSync(out, 'utf8').replace(`pathname = ${env.prefix}p1`, 'pathname = otherpart1'));
  const refused = await formatCli(env, ['-i', foreign]);
  t.is(refused.status, 1);
  t.regex(refused.stderr, /foreign\.cfg: not this node's layout: \[partition_1\] pathname is otherpart1, this node's is .*p1 \(nothing was changed\)/);
  t.is(readFileSync(path.join(env.dir, 'slapos.json'), 'utf8'), before);
});
