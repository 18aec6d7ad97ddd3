// partition_timeout: the whole process tree goes, not only buildout.
import test from 'ava';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BuildoutFailedError, runBuildout } from '../../src/software/buildout.js';
import { createLogger } from '../../src/util/log.js';
import { tempDir } from '../helpers/system.js';

test('a timed-out buildout is killed with its children', async (t) => {
  const dir = tempDir(t);
  const script = path.join(dir, 'fake-buildout');
  const pidFile = path.join(dir, 'child.pid');
  // A child in the background that would outlive a plain kill of its parent.
  writeFileSync(script, `#!/bin/sh\nsleep 30 &\necho $! > ${pidFile}\necho started\nwait\n`);
  chmodSync(script, 0o755);
  const started = Date.now();
  const error = await t.throwsAsync(runBuildout({
    command: ['/bin/sh', script], args: [], cwd: dir, home: dir, log: createLogger({ quiet: true }), label: 'test', timeout: 1000,
  }));
  t.true(error instanceof BuildoutFailedError);
  t.regex(error?.message ?? '', /timed out after 1 s: process tree killed/);
  t.regex(error?.message ?? '', /started/);
  t.true(Date.now() - started < 10_000);
  const { readFileSync } = await import('node:fs');
  const child = Number(readFileSync(pidFile, 'utf8').trim());
  let alive = true;
  for (let i = 0; i < 20 && alive; i++) {
    try {
      process.kill(child, 0);
      // a zombie until reaped by init counts as gone
      alive = !readFileSync(`/proc/${child}/stat`, 'utf8').includes(') Z');
    } catch {
      alive = false;
    }
    if (alive) await new Promise((r) => setTimeout(r, 100));
  }
  t.false(alive, 'the background child was killed too');
});
