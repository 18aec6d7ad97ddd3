// `slapos node software` end to end: our master on loopback, the real CLI,
// real buildout as a real software user. The master records what the node reports.
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { SlapClient } from '../../src/slap/client.js';
import { urlHash } from '../../src/software/plan.js';
import { startTestMaster } from '../helpers/master.js';
import { createUser, isRoot, repoRoot, tempDir } from '../helpers/system.js';

const rootTest = isRoot ? test.serial : test.skip;
const EXAMPLE = path.join(repoRoot, 'examples', 'hello-http', 'software.cfg');

rootTest('supply → node software → the master records available/error; destroyed → removed and forgotten', async (t) => {
  const master = await startTestMaster(t, 'COMP-1234');
  const client = new SlapClient(master.url);
  t.teardown(() => client.close());
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const user = createUser(t);
  for (const sub of ['software', 'instance']) mkdirSync(path.join(dir, sub));
  chownSync(path.join(dir, 'software'), user.uid, user.gid);
  const cfg = path.join(dir, 'slapos.cfg');
  writeFileSync(
    cfg,
    `[slapos]\ncomputer_id = COMP-1234\nmaster_url = ${master.url}\nsoftware_root = ${dir}/software\n` +
      `instance_root = ${dir}/instance\npidfile_software = ${dir}/sr.pid\n`,
  );
  const broken = path.join(dir, 'broken.cfg');
  writeFileSync(broken, '[buildout]\nparts = nope\n[nope]\nrecipe = no.such.recipe\n');
  chmodSync(broken, 0o644);
  await client.supplySupply(broken, 'COMP-1234');
  await client.supplySupply(EXAMPLE, 'COMP-1234');

  // Asynchronous: the master answers from this very process.
  const run = () =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [path.join(repoRoot, 'bin', 'slapos.js'), 'node', 'software', '--now', '--json', '--cfg', cfg], {
        encoding: 'utf8', env: { PATH: process.env.PATH }, timeout: 300_000,
      }, (error, stdout, stderr) => resolve({ status: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }));
    });
  const first = await run();
  t.is(first.status, 1, first.stderr);
  const summary = JSON.parse(first.stdout) as { installed: { url: string }[]; failed: { url: string }[] };
  t.deepEqual(summary.installed.map((r) => r.url), [EXAMPLE], 'the broken release did not stop the next one');
  t.deepEqual(summary.failed.map((r) => r.url), [broken]);
  t.true(existsSync(path.join(dir, 'software', urlHash(EXAMPLE), '.completed')));

  const example = await master.store.transaction((tx) => tx.getSoftware(EXAMPLE, 'COMP-1234'));
  t.is(example?.reported_state, 'available');
  const failed = await master.store.transaction((tx) => tx.getSoftware(broken, 'COMP-1234'));
  t.is(failed?.reported_state, 'error');
  t.regex(failed?.error_log ?? '', /Failed to run buildout[\s\S]*no\.such\.recipe|no\.such\.recipe[\s\S]*/);

  // Removed from the node when the master says destroyed.
  await client.supplySupply(EXAMPLE, 'COMP-1234', 'destroyed');
  await client.supplySupply(broken, 'COMP-1234', 'destroyed');
  const second = await run();
  t.is(second.status, 0, second.stderr);
  t.false(existsSync(path.join(dir, 'software', urlHash(EXAMPLE))));
  // destroyedSoftwareRelease makes the master forget the release (as the reference).
  const destroyed = await master.store.transaction((tx) => tx.listSoftware('COMP-1234'));
  t.deepEqual(destroyed, []);
});
