// The related-instances step on its own: what it posts from the transaction file,
// what it refuses to read (the file belongs to the partition user), and a master
// without the route (404) as a warning only. The master link is a recording test double.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { partitionFiles } from '../../src/partition/files.js';
import { SlapHttpError, SlapNotFoundError } from '../../src/slap/errors.js';
import type { PartitionRun } from '../../src/instance/step.js';
import { relatedInstancesStep } from '../../src/instance/steps/related.js';
import { tempDir } from '../helpers/system.js';

function fakeRun(t: Parameters<typeof tempDir>[0], answer: (titles: string[]) => Promise<void>) {
  const root = tempDir(t);
  const files = partitionFiles(root, 'slappart0');
  mkdirSync(files.dir);
  const posted: string[][] = [];
  const warnings: string[] = [];
  const run = {
    id: 'slappart0', files,
    link: { related: async (_id: string, titles: string[]) => { posted.push(titles); await answer(titles); } },
    log: { warn: (fields: unknown, m?: string) => warnings.push(typeof fields === 'string' ? fields : `${m} ${JSON.stringify(fields)}`), info: () => undefined, debug: () => undefined, error: () => undefined },
  } as unknown as PartitionRun;
  return { run, files, posted, warnings, root };
}

test('posts the non-empty lines; no file, no post; an empty file posts an empty list', async (t) => {
  const { run, files, posted } = fakeRun(t, async () => undefined);
  await relatedInstancesStep.run(run);
  t.deepEqual(posted, [], 'no transaction file: nothing posted');
  writeFileSync(files.transaction, '');
  await relatedInstancesStep.run(run);
  writeFileSync(files.transaction, 'child0\n\nchild1\n');
  await relatedInstancesStep.run(run);
  t.deepEqual(posted, [[], ['child0', 'child1']]);
});

test('a master answering 404 is a warning; another error fails the step', async (t) => {
  const notFound = fakeRun(t, async () => { throw new SlapNotFoundError('updateComputerPartitionRelatedInstanceList', 404, ''); });
  writeFileSync(notFound.files.transaction, 'child0\n');
  await relatedInstancesStep.run(notFound.run);
  t.regex(notFound.warnings.join('\n'), /NotFoundError: Cannot send requested instance list to master.*"endpoint":"updateComputerPartitionRelatedInstanceList"/);
  const refused = fakeRun(t, async () => { throw new SlapHttpError('updateComputerPartitionRelatedInstanceList', 400, 'invalid'); });
  writeFileSync(refused.files.transaction, 'child0\n');
  await t.throwsAsync(relatedInstancesStep.run(refused.run), { message: /HTTP 400/ });
});

test('a planted symlink or FIFO is refused, never followed nor blocked on', async (t) => {
  const { run, files, posted, root } = fakeRun(t, async () => undefined);
  const secret = path.join(root, 'secret');
  writeFileSync(secret, 'root-only\n');
  symlinkSync(secret, files.transaction);
  await t.throwsAsync(relatedInstancesStep.run(run), { message: /symbolic link/ });
  rmSync(files.transaction);
  t.is(spawnSync('mkfifo', [files.transaction]).status, 0);
  await t.throwsAsync(relatedInstancesStep.run(run), { message: /not a regular file/ });
  t.deepEqual(posted, []);
});
