// Stops a test's supervisord at teardown, by its pid file, even when the test failed.
import type { ExecutionContext } from 'ava';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isAlive as alive } from '../helpers/system.js';

export function stopSupervisordAtTeardown(t: ExecutionContext, instanceRoot: string): void {
  t.teardown(async () => {
    let pid: number;
    try {
      pid = Number(readFileSync(path.join(instanceRoot, 'var', 'run', 'supervisord.pid'), 'utf8').trim());
    } catch {
      return; // never started
    }
    if (!(pid > 0) || !alive(pid)) return;
    process.kill(pid, 'SIGTERM'); // supervisord stops its children, then itself
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
}
