// `slapos proxy start` as a child process for tests: free port, start, wait
// until it answers, SIGKILL in teardown if still running.
import type { ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';
import { createServer } from 'node:net';
import path from 'node:path';
import { request, type Dispatcher } from 'undici';
import { repoRoot } from './paths.js';

export const BIN = path.join(repoRoot, 'bin', 'slapos.js');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export function startProxy(t: ExecutionContext, cfg: string, extra: readonly string[] = []): ResultPromise {
  const child = execa('node', [BIN, 'proxy', 'start', '--cfg', cfg, ...extra], { reject: false, all: true });
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await child;
  });
  return child;
}

/** Waits until something answers HTTP(S) on the port (any status). */
export async function waitListening(child: ResultPromise, url: string, dispatcher?: Dispatcher): Promise<void> {
  for (let i = 0; i < 150; i += 1) {
    if (child.exitCode !== null) throw new Error(`master exited: ${String((await child).all).slice(-800)}`);
    try {
      const res = await request(url, dispatcher ? { dispatcher } : {});
      await res.body.dump();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`master at ${url} did not start`);
}
