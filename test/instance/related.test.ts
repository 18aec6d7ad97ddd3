// Related instances end to end: a formatted node in a namespace, our master, real
// buildout. The parent's instance buildout requests its children from inside the
// partition (as slapos.slap does: transaction file + requestComputerPartition);
// the node posts the list after the run; our master destroys the child the parent
// stops requesting. Then the same node against a master that answers 404 to that
// post (as the reference's proxy) keeps working.
import test from 'ava';
import { chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import path from 'node:path';
import { NOT_FOUND_PAGE } from '../../src/master/server.js';
import { urlHash } from '../../src/software/plan.js';
import { isRoot } from '../helpers/system.js';
import { cli, instancePass, nodeEnv, setKey } from './env.js';

const rootTest = isRoot ? test.serial : test.skip;

// STAND-IN for slapos.slap inside an instance buildout (the real library is not
// installed on this machine): what matters here is what it leaves for the node.
// registerComputerPartition creates the empty transaction file when
// SLAPGRID_INSTANCE_ROOT is set and the partition is writable; each request()
// appends the title, then POSTs requestComputerPartition with the form fields the
// reference sends (recorded in test/fixtures/slap-traffic/13-related-instances.jsonl).
const RECIPE = `import json, os, urllib.error, urllib.parse, urllib.request
from xml.sax.saxutils import escape


def _dict(d):
    if not d:
        return '<marshal><dictionary id="i2"/></marshal>'
    body = ''.join('<string>%s</string><string>%s</string>' % (escape(k), escape(v)) for k, v in sorted(d.items()))
    return '<marshal><dictionary id="i2">%s</dictionary></marshal>' % body


class Request(object):
    def __init__(self, buildout, name, options):
        self.options = options

    def install(self):
        o = self.options
        with open(o['configuration-file']) as f:
            titles = json.load(f)['parameters'].get('children', '').split()
        root = os.environ.get('SLAPGRID_INSTANCE_ROOT')
        pid = o['partition-id']
        transaction = None
        if root and os.access(os.path.join(root, pid), os.W_OK):
            transaction = os.path.join(root, pid, '.slapos-request-transaction-%s' % pid)
            open(transaction, 'a').close()
        with open(o['seen-file'], 'w') as f:
            json.dump({'SLAPGRID_INSTANCE_ROOT': root, 'slap-configuration-url': o['own-url']}, f)
        for title in titles:
            if transaction:
                with open(transaction, 'a') as f:
                    f.write(title + '\\n')
            form = {
                'software_release': o['software-release-url'], 'partition_reference': title,
                'partition_parameter_xml': _dict({}), 'filter_xml': _dict({}), 'software_type': 'default',
                'state': '<marshal><none/></marshal>', 'shared_xml': '<marshal><bool>0</bool></marshal>',
                'computer_id': o['computer-id'], 'computer_partition_id': pid,
            }
            url = o['server-url'].rstrip('/') + '/requestComputerPartition'
            try:
                urllib.request.urlopen(urllib.request.Request(url, data=urllib.parse.urlencode(form).encode()), timeout=30).read()
            except urllib.error.HTTPError as e:
                if e.code != 408:
                    raise
        return []

    update = install
`;

// The release's own [slap-configuration] (as a release using slapos.cookbook's
// slapconfiguration recipe has): the node must not merge its data into it.
const INSTANCE_CFG = (sp: string) => `[buildout]
parts = children
eggs-directory = ${sp}/eggs
develop-eggs-directory = ${sp}/develop-eggs
offline = true

[slap-configuration]
url = the-release-own-value

[children]
recipe = related-recipe
configuration-file = \${slapos-node-configuration:configuration-file}
partition-id = \${slap-connection:partition-id}
computer-id = \${slap-connection:computer-id}
server-url = \${slap-connection:server-url}
software-release-url = \${slap-connection:software-release-url}
own-url = \${slap-configuration:url}
seen-file = \${buildout:directory}/seen.json
`;

/** A release built by hand: instance.cfg and the recipe egg, marked complete. */
function buildRelease(softwareRoot: string, url: string): void {
  const sp = path.join(softwareRoot, urlHash(url));
  const egg = path.join(sp, 'eggs', 'related_recipe-1.0.egg');
  mkdirSync(path.join(egg, 'EGG-INFO'), { recursive: true });
  mkdirSync(path.join(egg, 'related_recipe'), { recursive: true });
  mkdirSync(path.join(sp, 'develop-eggs'), { recursive: true });
  writeFileSync(path.join(egg, 'EGG-INFO', 'PKG-INFO'), 'Metadata-Version: 1.1\nName: related-recipe\nVersion: 1.0\n');
  writeFileSync(path.join(egg, 'EGG-INFO', 'entry_points.txt'), '[zc.buildout]\ndefault = related_recipe:Request\n');
  writeFileSync(path.join(egg, 'EGG-INFO', 'top_level.txt'), 'related_recipe\n');
  writeFileSync(path.join(egg, 'EGG-INFO', 'zip-safe'), '\n');
  writeFileSync(path.join(egg, 'related_recipe', '__init__.py'), RECIPE);
  writeFileSync(path.join(sp, 'instance.cfg'), INSTANCE_CFG(sp));
  writeFileSync(path.join(sp, '.completed'), 'now');
  const soft = statSync(softwareRoot);
  for (const dir of [sp, path.join(sp, 'eggs'), egg, path.join(sp, 'develop-eggs')]) chownSync(dir, soft.uid, soft.gid);
}

/** STAND-IN for the reference's proxy on this route only: forwards everything to our master but answers Flask's 404 to updateComputerPartitionRelatedInstanceList. */
async function proxyWithout404Route(t: Parameters<typeof nodeEnv>[0], target: string): Promise<{ url: string; seen: string[] }> {
  const seen: string[] = [];
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if ((req.url ?? '').startsWith('/updateComputerPartitionRelatedInstanceList')) {
      req.resume();
      res.writeHead(404, { 'content-type': 'text/html; charset=utf-8' }).end(NOT_FOUND_PAGE);
      return;
    }
    const forward = httpRequest({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.writeHead(502).end());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  return { url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/`, seen };
}


rootTest('a child requested from inside the parent\'s buildout is recorded, and destroyed when the parent stops requesting it; a 404 master is only a warning', async (t) => {
  const env = await nodeEnv(t, 4);
  const { client, computerId, cfg, master } = env;
  const sr = path.join(env.dir, 'related', 'software.cfg');
  buildRelease(env.softwareRoot, sr);
  await client.supplySupply(sr, computerId);
  const parent = await client.requestComputerPartition(sr, 'parent0', { parameters: { children: 'child0 child1' } });
  const parentId = parent.partitionId ?? '';
  const parentDir = path.join(env.instanceRoot, parentId);
  const run = () => instancePass(cfg);
  const row = (title: string, scope: string) => master.store.read((tx) => tx.findInstance(title, scope));
  const related = (partition: string) => master.store.read((tx) => tx.listRelated(computerId, partition));

  // Run 1: the parent's buildout requests child0 and child1; the node posts them.
  const first = await run();
  t.is(first.status, 0, first.stderr);
  t.deepEqual(first.summary?.processed, [parentId]);
  const seen = JSON.parse(readFileSync(path.join(parentDir, 'seen.json'), 'utf8')) as Record<string, string>;
  t.is(seen['SLAPGRID_INSTANCE_ROOT'], env.instanceRoot, 'buildout gets SLAPGRID_INSTANCE_ROOT');
  t.is(seen['slap-configuration-url'], 'the-release-own-value', 'the release\'s own [slap-configuration] is not overridden');
  const transaction = path.join(parentDir, `.slapos-request-transaction-${parentId}`);
  t.is(readFileSync(transaction, 'utf8'), 'child0\nchild1\n');
  const child0 = await row('child0', 'parent0');
  const child1 = await row('child1', 'parent0');
  t.truthy(child0 && child1, 'the children were allocated in the parent\'s tree');
  t.deepEqual(await related(parentId), ['child0', 'child1']);

  // Run 2: the children are deployed and post empty lists; the up-to-date parent's file is removed and nothing is posted.
  const second = await run();
  t.is(second.status, 0, second.stderr);
  t.deepEqual(second.summary?.processed.sort(), [child0!.reference, child1!.reference].sort());
  t.false(existsSync(transaction), 'removed for an up-to-date partition too (as the reference)');
  t.is(readFileSync(path.join(env.instanceRoot, child0!.reference, `.slapos-request-transaction-${child0!.reference}`), 'utf8'), '');
  t.deepEqual(await related(child0!.reference), []);
  t.deepEqual(await related(parentId), ['child0', 'child1']);

  // Run 3: the parent stops requesting child1: the master asks for its destruction.
  await client.requestComputerPartition(sr, 'parent0', { parameters: { children: 'child0' } });
  const third = await run();
  t.is(third.status, 0, third.stderr);
  t.true(third.summary?.processed.includes(parentId));
  t.deepEqual(await related(parentId), ['child0']);
  t.is((await master.store.read((tx) => tx.getPartition(computerId, child1!.reference)))?.requested_state, 'destroyed');
  t.is((await row('child0', 'parent0'))?.requested_state, 'started');
  // The node's report loop destroys it and the master frees the partition.
  const report = await cli(cfg, ['node', 'report', '--now']);
  t.is(report.status, 0, report.stderr);
  t.is((await master.store.read((tx) => tx.getPartition(computerId, child1!.reference)))?.slap_state, 'free');
  t.is(await row('child1', 'parent0'), undefined);

  // Against a master that answers 404 to the post (the reference's proxy): a warning, the run succeeds.
  const proxy = await proxyWithout404Route(t, master.url);
  setKey(cfg, 'master_url', proxy.url);
  await client.requestComputerPartition(sr, 'parent0', { parameters: { children: 'child0', bump: '1' } });
  const fourth = await cli(cfg, ['node', 'instance', '--now', '--only-cp', parentId]);
  t.is(fourth.status, 0, fourth.stderr);
  t.true(proxy.seen.some((line) => line.startsWith('POST /updateComputerPartitionRelatedInstanceList')));
  t.regex(fourth.stdout + fourth.stderr, /Cannot send requested instance list to master/);
  t.deepEqual(await related(parentId), ['child0'], 'nothing reached our master');
});
