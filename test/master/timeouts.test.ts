// Slow clients (issue 15): slow or dripping headers, a stalled or dripping
// body, idle keep-alive connections and a TLS client that never finishes the
// handshake each lose their socket after the configured timeout (short ones
// here), and a normal request still works.
import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import tls from 'node:tls';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { createCa, issueCertificate } from '../../src/master/certificates.js';
import type { MasterTimeouts } from '../../src/master/limits.js';
import { buildMaster } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { listenOnLoopback, tempDir } from '../helpers/master.js';

const SHORT: MasterTimeouts = { headers: 300, request: 600, idle: 1000, keepAlive: 300, handshake: 300, checkInterval: 100 };

async function start(t: ExecutionContext, https?: { key: string; cert: string }) {
  const dir = tempDir(t);
  const app = await buildMaster({ store: new SqliteStore(path.join(dir, 'proxy.db')), defaultComputer: 'COMP-1234', timeouts: SHORT,
    ...(https ? { https: { key: Buffer.from(https.key), cert: Buffer.from(https.cert) } } : {}) });
  t.teardown(() => app.close());
  return listenOnLoopback(app);
}

/**
 * Opens a raw connection, writes `first`, then `drip` every 100 ms (if given);
 * resolves when the server closes it: after how long, and what it answered.
 */
function hold(port: number, first: string, drip?: string, giveUpMs = 5000): Promise<{ ms: number; received: string; closed: boolean; firstDataMs: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    let firstDataMs = -1;
    let timer: NodeJS.Timeout | undefined;
    const done = (closed: boolean) => {
      clearInterval(timer);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ ms: performance.now() - started, received, closed, firstDataMs });
    };
    const giveUp = setTimeout(() => done(false), giveUpMs);
    socket.on('connect', () => {
      if (first) socket.write(first);
      if (drip) timer = setInterval(() => socket.writable && socket.write(drip), 100);
    });
    socket.on('data', (chunk) => {
      if (firstDataMs < 0) firstDataMs = performance.now() - started;
      received += chunk.toString();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => done(true));
  });
}

const GET = 'GET /getFullComputerInformation?computer_id=COMP-1234 HTTP/1.1\r\nHost: 127.0.0.1\r\n';

test('slow headers, slow bodies and idle connections are closed after their timeout', async (t) => {
  const port = await start(t);
  const [silent, partialHead, drippingHead, stalledBody, drippingBody, keepAlive] = await Promise.all([
    hold(port, ''),
    hold(port, GET),
    hold(port, GET, 'X-Slow: 1\r\n'),
    hold(port, 'POST /useComputer HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ncomputer_id='),
    hold(port, 'POST /useComputer HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nuse_string=', 'a'),
    hold(port, `${GET}Connection: keep-alive\r\n\r\n`),
  ]);
  for (const [name, r, max] of [
    ['a connection that sends nothing', silent, 1500], ['half a request head', partialHead, 1000],
    ['a head dripping a header every 100 ms', drippingHead, 1000], ['a stalled body', stalledBody, 1200],
    ['a body dripping a byte every 100 ms', drippingBody, 1200],
  ] as const) {
    t.true(r.closed, `${name}: closed by the server`);
    t.true(r.ms < max, `${name}: closed after ${Math.round(r.ms)} ms (< ${max})`);
  }
  t.regex(partialHead.received, /^HTTP\/1\.1 408/, 'the slow head is told why');
  t.regex(drippingBody.received, /^HTTP\/1\.1 408/, 'the slow body is told why');
  t.regex(keepAlive.received, /^HTTP\/1\.1 200/, 'the keep-alive request itself was answered');
  // Closed 300 ms after its answer plus Node's keepAliveTimeoutBuffer (1 s since Node 20.20, so that a client
  // reusing the socket at the last moment does not race the close).
  const idle = keepAlive.ms - keepAlive.firstDataMs;
  t.true(keepAlive.closed && idle >= 250 && idle < 1800, `the idle keep-alive connection closed ${Math.round(idle)} ms after its answer`);
  // The master still answers at normal speed.
  const ok = await hold(port, `${GET}Connection: close\r\n\r\n`);
  t.regex(ok.received, /^HTTP\/1\.1 200/);
});

test('TLS: a client that never finishes the handshake, or stalls its body after it, is dropped in time', async (t) => {
  const dir = tempDir(t);
  const ca = { certFile: path.join(dir, 'ca.crt'), keyFile: path.join(dir, 'ca.key') };
  await createCa(ca.certFile, ca.keyFile);
  const server = await issueCertificate(ca, 'server', 'localhost', ['localhost', '127.0.0.1']);
  const port = await start(t, { key: server.key, cert: server.certificate });
  const [silent, partialHello] = await Promise.all([hold(port, ''), hold(port, '\u0016\u0003\u0001\u0000')]);
  t.true(silent.closed && silent.ms < 1000, `silent TLS client closed after ${Math.round(silent.ms)} ms`);
  t.true(partialHello.closed && partialHello.ms < 1000, `partial ClientHello closed after ${Math.round(partialHello.ms)} ms`);
  // After a complete handshake (no client certificate), a stalled body is dropped like on plain HTTP (the probe: 150 s).
  const stalled = await new Promise<{ ms: number; received: string }>((resolve) => {
    const started = performance.now();
    let received = '';
    const socket = tls.connect({ port, host: '127.0.0.1', servername: 'localhost', ca: readFileSync(ca.certFile) }, () => {
      socket.write('POST /useComputer HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nuse_');
    });
    socket.on('data', (chunk) => {
      received += chunk.toString();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ ms: performance.now() - started, received }));
    setTimeout(() => socket.destroy(), 5000);
  });
  t.true(stalled.ms < 1500, `stalled TLS body closed after ${Math.round(stalled.ms)} ms`);
  t.regex(stalled.received, /^HTTP\/1\.1 408/);
});
