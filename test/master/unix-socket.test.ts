// The master on a unix socket ([slapproxy] unix_socket): each caller known by
// SO_PEERCRED, with the same table as a loopback TCP caller (docs/master.md):
// root everything, a partition user its own partition, any other local user
// nothing. Callers are real processes of real users; the node's client
// reaches the socket through an http+unix:// master URL.
import test from 'ava';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { startMaster } from '../../src/master/server.js';
import { native } from '../../src/native/index.js';
import { masterEndpoint, unixMasterUrl } from '../../src/slap/master-url.js';
import { SlapClient } from '../../src/slap/client.js';
import { parseConfig } from '../../src/config/load.js';
import { createUser, isRoot, tempDir, type TestUser } from '../helpers/system.js';
import { computer } from '../helpers/semantics-suite.js';

const rootTest = isRoot ? test.serial : test.skip;
const execFileAsync = promisify(execFile);

test('unix socket master URLs: unix:/path, or http+unix://%2F…/; requests to http://localhost/', (t) => {
  t.deepEqual(masterEndpoint('unix:/run/slapos/master.sock'), { base: 'http://localhost/', socketPath: '/run/slapos/master.sock' });
  t.deepEqual(masterEndpoint('unix:///run/m.sock/'), { base: 'http://localhost/', socketPath: '/run/m.sock' });
  t.deepEqual(masterEndpoint('http+unix://%2Frun%2Fslapos%2Fmaster.sock/'), { base: 'http://localhost/', socketPath: '/run/slapos/master.sock' });
  t.deepEqual(masterEndpoint('https://m:8080'), { base: 'https://m:8080/' });
  t.is(unixMasterUrl('/run/slapos/master.sock'), 'unix:/run/slapos/master.sock');
  t.throws(() => masterEndpoint('http+unix://run.sock/'), { message: /absolute path with each "\/" as %2F/ });
  t.throws(() => masterEndpoint('unix:/'), { message: /socket's absolute path/ });
  t.is(parseConfig('[slapos]\nmaster_url = unix:/run/m.sock\n', 'x.cfg').slapos.master_url, 'unix:/run/m.sock');
  t.is(parseConfig('[slapos]\nmaster_url = http+unix://%%2Frun%%2Fm.sock/\n', 'x.cfg').slapos.master_url, 'http+unix://%2Frun%2Fm.sock/');
  t.throws(() => parseConfig('[slapos]\nmaster_url = unix:relative\n', 'x.cfg'), { message: /unix:\/path\/to\/master\.sock/ });
});

/** GET `url` path through the socket as `user` (root when undefined), from a separate process: the HTTP status. */
async function statusAs(user: TestUser | undefined, socketPath: string, urlPath: string): Promise<string> {
  const code = `require('node:http').get({ socketPath: process.argv[1], path: process.argv[2] }, (r) => { r.resume(); console.log(r.statusCode); })
    .on('error', (e) => console.log('error ' + e.code));`;
  const { stdout } = await execFileAsync(process.execPath, ['-e', code, socketPath, urlPath],
    { encoding: 'utf8', ...(user ? { uid: user.uid, gid: user.gid } : {}), timeout: 20_000 });
  return stdout.trim();
}

rootTest('unix socket with SO_PEERCRED: root everything, a partition user its own partition only, another local user nothing', async (t) => {
  const [a, b, stranger] = [createUser(t), createUser(t), createUser(t)];
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const instanceRoot = path.join(dir, 'srv');
  mkdirSync(instanceRoot, { mode: 0o755 });
  for (const [id, user] of [['slappart0', a], ['slappart1', b]] as const) {
    mkdirSync(path.join(instanceRoot, id), { mode: 0o750 });
    chownSync(path.join(instanceRoot, id), user.uid, user.gid);
  }
  const socket = path.join(dir, 'master.sock');
  writeFileSync(socket, 'not a socket');
  const config = { host: '127.0.0.1', port: 0, database_uri: path.join(dir, 'proxy.db'), allow_insecure_bind: false, unix_socket: socket };
  const local = { instanceRoot, computer: 'COMP-1', peerCredentials: native().peerCredentials };
  await t.throwsAsync(startMaster(config, 'COMP-1', false, [], local), { message: /exists and is not a socket/ }, 'a file in the way is refused');
  t.true(statSync(socket).isFile(), 'and left as it was');
  const { rmSync } = await import('node:fs');
  rmSync(socket);
  const { app } = await startMaster(config, 'COMP-1', false, [], local);
  t.teardown(() => app.close());
  t.true(statSync(socket).isSocket());
  t.is(statSync(socket).mode & 0o777, 0o666, 'anyone may connect; the uid decides');

  // Root formats the computer through an http+unix:// master URL (the node's client).
  const client = new SlapClient(unixMasterUrl(socket));
  t.teardown(() => client.close());
  await client.loadComputerConfigurationFromXML(computer('COMP-1', 2));
  t.is((await client.getFullComputerInformation('COMP-1')).partitions.length, 2);

  const partition = (id: string) => `/registerComputerPartition?computer_reference=COMP-1&computer_partition_reference=${id}`;
  const full = '/getFullComputerInformation?computer_id=COMP-1';
  t.is(await statusAs(undefined, socket, full), '200', 'root: the whole computer');
  t.is(await statusAs(a, socket, partition('slappart0')), '200', 'a partition user: its own partition');
  t.is(await statusAs(a, socket, partition('slappart1')), '403', 'not another partition');
  t.is(await statusAs(a, socket, full), '403', 'not the whole computer');
  t.is(await statusAs(b, socket, partition('slappart1')), '200');
  t.is(await statusAs(b, socket, partition('slappart0')), '403');
  t.is(await statusAs(stranger, socket, partition('slappart0')), '403', 'another local user: nothing');
  t.is(await statusAs(stranger, socket, '/metrics'), '403');

  await app.close();
  t.throws(() => statSync(socket), { code: 'ENOENT' }, 'the socket is removed when the master stops');
});
