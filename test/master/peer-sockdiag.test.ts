// The master's two readers of a loopback caller's uid agree: the kernel's
// socket diagnostics (the native addon's NETLINK_SOCK_DIAG exact lookup, what
// `proxy start` uses) and the /proc/net/tcp{,6} table (the fallback), for
// root and for another user, over IPv4 (as an IPv4-mapped address on a
// dual-stack listener) and IPv6.
import test from 'ava';
import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { loopbackPeerUid } from '../../src/master/peer.js';
import { native } from '../../src/native/index.js';
import { isRoot } from '../helpers/system.js';

const run = promisify(execFile);
const rootTest = isRoot ? test.serial : test.skip;
const NOBODY = 65534;

/** The uids both readers give for one connection made by `connect` to a listener on `listen`. */
async function uidsOf(listen: string, connect: (port: number) => Promise<unknown>): Promise<{ diag?: number | undefined; proc?: number | undefined }> {
  let seen: { diag?: number | undefined; proc?: number | undefined } = {};
  const server = net.createServer((socket) => {
    seen = { diag: loopbackPeerUid(socket, '/proc/net', native().tcpSocketUid), proc: loopbackPeerUid(socket) };
    socket.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, listen, resolve));
  try {
    await connect((server.address() as net.AddressInfo).port);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  return seen;
}

/** A client as `uid` (a separate node process): connects, waits for the server's answer. */
function clientAs(uid: number, host: string) {
  return (port: number) => run('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', process.execPath, '-e',
    `const s = require('node:net').connect(${port}, ${JSON.stringify(host)}); s.on('data', () => s.end()); s.on('error', (e) => { console.error(e.message); process.exit(1); });`]);
}

for (const [listen, host] of [['::', '127.0.0.1'], ['::1', '::1'], ['127.0.0.1', '127.0.0.1']] as const) {
  rootTest(`loopback peer uid by socket diagnostics equals the /proc/net table's (listener ${listen}, client to ${host})`, async (t) => {
    t.deepEqual(await uidsOf(listen, clientAs(0, host)), { diag: 0, proc: 0 }, 'root');
    t.deepEqual(await uidsOf(listen, clientAs(NOBODY, host)), { diag: NOBODY, proc: NOBODY }, 'nobody');
  });
}

rootTest('a socket that does not exist has no uid; bad addresses are refused', (t) => {
  t.is(native().tcpSocketUid('127.0.0.1', 1, '127.0.0.1', 1), undefined);
  t.throws(() => native().tcpSocketUid('not-an-address', 1, '127.0.0.1', 1), { message: /not a pair of IP addresses/ });
  t.throws(() => native().tcpSocketUid('127.0.0.1', 0, '127.0.0.1', 1), { message: /ports/ });
});
