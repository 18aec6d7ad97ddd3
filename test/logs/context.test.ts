// Per-partition JSON log lines carry their context (partition, software_release,
// step, loop) so that --log-file can be filtered by partition; the human lines
// on stderr stay as they were (the messages already name the partition).
import test from 'ava';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { processPartition, type RunContext } from '../../src/instance/partition.js';
import { partitionLog } from '../../src/instance/partition-log.js';
import { runSteps, type PartitionRun } from '../../src/instance/step.js';
import { partitionFiles } from '../../src/partition/files.js';
import { createLogger } from '../../src/util/log.js';
import { tempDir } from '../helpers/system.js';

const SR = 'https://lab.example.com/software/hello/software.cfg';

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  return { stream, text: () => text };
}

function jsonLines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

class StepFailure extends Error {
  override name = 'StepFailure';
  constructor(readonly code: string) {
    super(`buildout exited with ${code}`);
  }
}

test('a partition run: every JSON line carries partition (and step, release, loop); human lines are unchanged', async (t) => {
  const dir = tempDir(t);
  const logFile = path.join(dir, 'log', 'slapos.jsonl');
  const stderr = capture();
  const root = createLogger({ logFile, stderr: stderr.stream });
  const loop = root.child({ loop: 'instance' });
  loop.info('instance loop started');

  const files = partitionFiles(path.join(dir, 'inst'), 'slappart7');
  mkdirSync(path.dirname(files.instanceLog), { recursive: true });
  const plog = partitionLog(loop.child({ software_release: SR }), files, 'slappart7', process.getgid?.() ?? 0);
  const run = { id: 'slappart7', log: plog.log } as unknown as PartitionRun;
  const error = await t.throwsAsync(() => runSteps(run, [
    { name: 'install', run: async (r) => r.log.info('Processing Computer Partition slappart7.') },
    { name: 'buildout', run: async () => { throw new StepFailure('ENOBUILD'); } },
    { name: 'processes', always: true, run: async (r) => r.log.warn('stopping what runs') },
  ]));
  plog.log.error({ err: error }, `slappart7: ${error?.message}`);
  plog.close();
  loop.info('instance loop finished');
  root.flush();

  const lines = jsonLines(logFile);
  const part = lines.filter((l) => l.partition === 'slappart7' && Number(l.level) >= 30);
  // The runner's own debug lines about a step carry it too.
  t.like(lines.find((l) => l.msg === 'step done'), { partition: 'slappart7', step: 'install' });
  t.deepEqual(part.map((l) => l.msg), [
    'Processing Computer Partition slappart7.', 'stopping what runs', 'slappart7: buildout exited with ENOBUILD',
  ]);
  t.true(lines.filter((l) => l.partition === 'slappart7').every((l) => l.software_release === SR && l.loop === 'instance'));
  t.is(part[0]?.step, 'install');
  t.is(part[1]?.step, 'processes');
  // The error keeps its typed fields.
  const err = part[2]?.err as Record<string, unknown> | undefined;
  t.is(err?.type, 'StepFailure');
  t.is(err?.code, 'ENOBUILD');
  // Loop lines carry the loop, and no partition.
  t.deepEqual(lines.filter((l) => l.partition === undefined).map((l) => [l.loop, l.msg]), [
    ['instance', 'instance loop started'], ['instance', 'instance loop finished'],
  ]);
  // Filtering by partition is a plain field match.
  t.is(lines.filter((l) => l.partition === 'slappart8').length, 0);

  t.is(stderr.text(), [
    'INFO  instance loop started',
    'INFO  Processing Computer Partition slappart7.',
    'WARN  stopping what runs',
    'ERROR slappart7: buildout exited with ENOBUILD',
    'INFO  instance loop finished',
    '',
  ].join('\n'));
  // The partition's own log keeps the reference's format.
  t.regex(readFileSync(files.instanceLog, 'utf8'), /^\[[^\]]+\] INFO {5}Processing Computer Partition slappart7\.\n/);
});

test('processPartition: lines about a partition the loop cannot process carry its id and release', async (t) => {
  const dir = tempDir(t);
  const logFile = path.join(dir, 'slapos.jsonl');
  const stderr = capture();
  const root = createLogger({ logFile, stderr: stderr.stream });
  const reported: string[] = [];
  const ctx = {
    settings: { instanceRoot: path.join(dir, 'inst'), softwareRoot: path.join(dir, 'soft') },
    link: { error: async (id: string) => void reported.push(id) },
    log: root.child({ loop: 'instance' }),
    now: Date.now,
    cache: { periodicity: new Map() },
  } as unknown as RunContext;
  const outcome = await processPartition(ctx, {
    id: 'slappart3', requestedState: 'started', url: SR, timestamp: '1', fingerprint: 'f', softwareType: 'default',
  }, () => { throw new Error('not decoded'); }, false);
  root.flush();
  t.is(outcome.kind, 'missing');
  t.deepEqual(reported, ['slappart3']);
  const [line] = jsonLines(logFile);
  t.like(line, { partition: 'slappart3', software_release: SR, loop: 'instance', level: 50 });
  t.regex(String(line?.msg), /slappart3 does not exist/);
  t.is(stderr.text(), `ERROR Partition directory ${path.join(dir, 'inst', 'slappart3')} does not exist.\n`);
});
