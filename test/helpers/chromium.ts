// Headless Chromium driven over the DevTools protocol (a WebSocket, undici's
// client): open a page at a given window size, wait for a condition in the
// page, read values, take a screenshot. Started by the test, killed at teardown.
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { WebSocket } from 'undici';
import { tempDir } from './master.js';

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

type Json = Record<string, unknown>;

export interface Page {
  /** Evaluates an expression in the page (awaiting a promise), returns its JSON value. */
  evaluate<T>(expression: string): Promise<T>;
  /** Polls `expression` until it is truthy (or throws after `timeoutMs`). */
  waitFor(expression: string, timeoutMs?: number): Promise<void>;
  goto(url: string): Promise<void>;
  /** PNG of the whole page (or of the window only, `full` false). */
  screenshot(full?: boolean): Promise<Buffer>;
  /** Console errors and uncaught exceptions seen so far. */
  errors: string[];
}

export interface Browser {
  open(url: string, size: { width: number; height: number; mobile?: boolean }): Promise<Page>;
}

export async function startChromium(t: ExecutionContext): Promise<Browser> {
  const profile = tempDir(t);
  // Chromium makes its singleton directory (org.chromium.Chromium.*) under TMPDIR and removes it only on a clean
  // exit; it is SIGKILLed at teardown, so that directory goes in one the test removes.
  const scratch = tempDir(t);
  const child = spawn(CHROMIUM as string, [
    '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--disable-dev-shm-usage', '--hide-scrollbars', `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank',
  ], { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: { ...process.env, TMPDIR: scratch } });
  // Chromium's own children (zygote, renderers) share its process group: all of them end, before the profile is removed.
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    try { process.kill(-(child.pid as number), 'SIGKILL'); } catch { /* already gone */ }
    await exited;
    await new Promise((resolve) => setTimeout(resolve, 200));
  });
  const endpoint = await new Promise<string>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`chromium did not start: ${text.slice(-1000)}`)), 30_000);
    child.stderr.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(text);
      if (m) { clearTimeout(timer); resolve(m[1] as string); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`chromium exited (${code}): ${text.slice(-1000)}`)); });
  });
  const ws = new WebSocket(endpoint);
  await new Promise<void>((resolve, reject) => { ws.addEventListener('open', () => resolve()); ws.addEventListener('error', () => reject(new Error('DevTools socket failed'))); });
  t.teardown(() => ws.close());
  let next = 1;
  const pending = new Map<number, { resolve: (v: Json) => void; reject: (e: Error) => void }>();
  const listeners: Array<(message: Json) => void> = [];
  ws.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as Json;
    const id = message.id as number | undefined;
    if (id !== undefined && pending.has(id)) {
      const p = pending.get(id)!;
      pending.delete(id);
      if (message.error) p.reject(new Error(JSON.stringify(message.error)));
      else p.resolve((message.result ?? {}) as Json);
    } else listeners.forEach((l) => l(message));
  });
  const send = (method: string, params: Json = {}, sessionId?: string) => new Promise<Json>((resolve, reject) => {
    const id = next++;
    pending.set(id, { resolve, reject });
    ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
  });

  return {
    async open(url, size) {
      const { targetId } = await send('Target.createTarget', { url: 'about:blank' }) as { targetId: string };
      const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true }) as { sessionId: string };
      const errors: string[] = [];
      listeners.push((m) => {
        if (m.sessionId !== sessionId) return;
        const params = m.params as Json | undefined;
        if (m.method === 'Runtime.exceptionThrown') errors.push(JSON.stringify((params?.exceptionDetails as Json | undefined)?.exception ?? params));
        if (m.method === 'Runtime.consoleAPICalled' && params?.type === 'error') errors.push(JSON.stringify(params.args));
        if (m.method === 'Log.entryAdded') {
          const entry = params?.entry as Json | undefined;
          if (entry?.level === 'error') errors.push(String(entry.text));
        }
      });
      await send('Runtime.enable', {}, sessionId);
      await send('Log.enable', {}, sessionId);
      await send('Page.enable', {}, sessionId);
      await send('Emulation.setDeviceMetricsOverride', { width: size.width, height: size.height, deviceScaleFactor: 1, mobile: Boolean(size.mobile) }, sessionId);
      const page: Page = {
        errors,
        async evaluate<T>(expression: string) {
          const r = await send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId) as { result: { value: T }; exceptionDetails?: Json };
          if (r.exceptionDetails) throw new Error(`in page: ${JSON.stringify(r.exceptionDetails)}`);
          return r.result.value;
        },
        async waitFor(expression, timeoutMs = 30_000) {
          const end = Date.now() + timeoutMs;
          while (!(await page.evaluate<boolean>(`Boolean(${expression})`))) {
            if (Date.now() > end) throw new Error(`timed out waiting for ${expression}; errors: ${errors.join('; ')}`);
            await new Promise((r) => setTimeout(r, 50));
          }
        },
        async goto(target) {
          // Resolves once the new document is there (the old one carries a mark).
          await page.evaluate('window.__leaving = true');
          await send('Page.navigate', { url: target }, sessionId);
          await page.waitFor('!window.__leaving && document.readyState !== "loading"');
        },
        async screenshot(full = true) {
          const { data } = await send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: full }, sessionId) as { data: string };
          return Buffer.from(data, 'base64');
        },
      };
      await page.goto(url);
      return page;
    },
  };
}
