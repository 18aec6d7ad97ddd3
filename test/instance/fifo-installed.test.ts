// A partition's own FIFO at .installed.cfg (issue 23, "hangs"): with a part
// to install, buildout opens .installed.cfg for writing at the end and blocks
// on the FIFO forever. partition_timeout bounds it — the run's cgroup is
// killed — and the other partition is still deployed in the same pass.
// Real buildout (Debian's zc.buildout), real supervisord, a namespace node.
import test from 'ava';
import { chownSync, existsSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { urlHash } from '../../src/software/plan.js';
import { isRoot } from '../helpers/system.js';
import { instancePass, nodeEnv, setKey } from './env.js';

const rootTest = isRoot ? test.serial : test.skip;

/** A recipe that installs nothing (one part, so buildout writes .installed.cfg). */
const RECIPE = `class Noop:
    def __init__(self, buildout, name, options):
        pass

    def install(self):
        return []

    update = install
`;

/** A release built by hand: instance.cfg with one part and its recipe egg, marked complete. */
function buildRelease(softwareRoot: string, url: string): void {
  const sp = path.join(softwareRoot, urlHash(url));
  const egg = path.join(sp, 'eggs', 'noop_recipe-1.0.egg');
  mkdirSync(path.join(egg, 'EGG-INFO'), { recursive: true });
  mkdirSync(path.join(egg, 'noop_recipe'), { recursive: true });
  mkdirSync(path.join(sp, 'develop-eggs'), { recursive: true });
  writeFileSync(path.join(egg, 'EGG-INFO', 'PKG-INFO'), 'Metadata-Version: 1.1\nName: noop-recipe\nVersion: 1.0\n');
  writeFileSync(path.join(egg, 'EGG-INFO', 'entry_points.txt'), '[zc.buildout]\ndefault = noop_recipe:Noop\n');
  writeFileSync(path.join(egg, 'EGG-INFO', 'top_level.txt'), 'noop_recipe\n');
  writeFileSync(path.join(egg, 'EGG-INFO', 'zip-safe'), '\n');
  writeFileSync(path.join(egg, 'noop_recipe', '__init__.py'), RECIPE);
  writeFileSync(path.join(sp, 'instance.cfg'),
    `[buildout]\nparts = noop\neggs-directory = ${sp}/eggs\ndevelop-eggs-directory = ${sp}/develop-eggs\noffline = true\n\n[noop]\nrecipe = noop-recipe\n`);
  writeFileSync(path.join(sp, '.completed'), 'now');
  const soft = statSync(softwareRoot);
  for (const dir of [sp, path.join(sp, 'eggs'), egg, path.join(sp, 'develop-eggs')]) chownSync(dir, soft.uid, soft.gid);
}

rootTest('a FIFO .installed.cfg blocks buildout until partition_timeout kills it; the other partition is deployed in the same pass', async (t) => {
  const env = await nodeEnv(t, 2);
  const { client, computerId, cfg } = env;
  setKey(cfg, 'partition_timeout', '8');
  const url = path.join(env.dir, 'noop', 'software.cfg');
  buildRelease(env.softwareRoot, url);
  await client.supplySupply(url, computerId);
  const hostile = (await client.requestComputerPartition(url, 'hostile').catch(() => undefined))?.partitionId;
  const fine = (await client.requestComputerPartition(url, 'fine').catch(() => undefined))?.partitionId;
  t.truthy(hostile && fine);
  const dir = path.join(env.instanceRoot, hostile as string);
  const owner = statSync(dir);
  const fifo = path.join(dir, '.installed.cfg');
  t.is(spawnSync('mkfifo', [fifo]).status, 0);
  chownSync(fifo, owner.uid, owner.gid); // the partition user's own file, as it would plant it

  const started = Date.now();
  const pass = await instancePass(cfg);
  const seconds = (Date.now() - started) / 1000;
  t.is(pass.status, 1, pass.stderr.slice(-2000));
  t.deepEqual(pass.summary?.failed.map((f) => f.id), [hostile], pass.stderr.slice(-3000));
  t.regex(pass.summary?.failed[0]?.error ?? '', /timed out after 8 s/);
  t.deepEqual(pass.summary?.processed, [fine], 'the other partition is deployed in the same pass');
  t.true(existsSync(path.join(env.instanceRoot, fine as string, '.timestamp')));
  t.true(readFileSync(path.join(env.instanceRoot, fine as string, '.installed.cfg'), 'utf8').includes('[noop]'), 'its buildout did install the part');
  t.true(seconds < 90, `the pass took ${seconds} s: bounded by partition_timeout`);
  t.true(lstatSync(fifo).isFIFO(), 'the FIFO is the user\'s: left as it is');
  const left = spawnSync('pgrep', ['-u', String(owner.uid)], { encoding: 'utf8' }).stdout.trim();
  t.is(left, '', 'no process of the hostile partition\'s user is left (its buildout was killed with its cgroup)');
});
