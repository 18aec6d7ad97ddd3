// src/network/netlink.ts for real, in a namespace made by the test: dumps too
// big for one read, asked at the same time as each other and as other
// requests on the one socket, are all answered whole (the kernel serves one
// dump per socket at a time; without waiting, the second failed with EBUSY or
// its parts were mixed with other answers).
import test from 'ava';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createNetns, isRoot, jsonInNetns, repoRoot, run, tempDir } from '../helpers/system.js';

const rootOnly = isRoot ? test : test.skip;

rootOnly('concurrent dumps and requests on one netlink socket are each answered whole', (t) => {
  const netns = createNetns(t);
  const batch = path.join(tempDir(t), 'batch');
  const lines = ['link add v0 type veth peer name v1', 'link set v0 up'];
  for (let i = 1; i <= 2000; i++) lines.push(`addr add fd00:1::${i.toString(16)}/128 dev v0 nodad`);
  for (let i = 1; i <= 1000; i++) lines.push(`route add fd00:2:${i.toString(16)}::/80 dev v0`);
  writeFileSync(batch, `${lines.join('\n')}\n`);
  run('ip', ['-n', netns, '-batch', batch]);
  const netlink = JSON.stringify(new URL(`file://${path.join(repoRoot, 'dist', 'src', 'network', 'netlink.js')}`).href);
  const result = jsonInNetns<{ rounds: { links: number; addresses: number; routes: number; up: boolean }[] }>(
    netns,
    `const { Rtnl } = await import(${netlink}); const rtnl = new Rtnl(); const rounds = [];
     for (let k = 0; k < 3; k++) {
       const v0 = (await rtnl.link('v0')).index; const v1 = (await rtnl.link('v1')).index;
       const [links, addresses, routes] = await Promise.all([rtnl.links(), rtnl.addresses(), rtnl.routes(), rtnl.setUp(v1)]);
       rounds.push({ links: links.length, addresses: addresses.filter((a) => a.index === v0 && a.prefixlen === 128).length,
         routes: routes.filter((r) => r.dstLen === 80).length, up: (await rtnl.link('v1')).up });
     }
     rtnl.close();
     console.log(JSON.stringify({ rounds }));`,
  );
  // lo, v0, v1; v0's 2,000 addresses (its link-local /64 apart); the 1,000 routes.
  t.deepEqual(result.rounds, Array(3).fill({ links: 3, addresses: 2000, routes: 1000, up: true }));
});
