// Multimaster forwarding to a TLS master that checks client certificates:
// the section's key/cert is the identity the other master sees.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildMaster, type MasterOptions } from '../../src/master/server.js';
import { SqliteStore } from '../../src/master/sqlite-store.js';
import { SlapClient } from '../../src/slap/client.js';
import { SlapHttpError } from '../../src/slap/errors.js';
import { listenOnLoopback, tempDir } from '../helpers/master.js';
import { BIN } from '../helpers/proxy-process.js';
import { computer } from '../helpers/semantics-suite.js';

const FORWARDED = '/opt/sr/forwarded/software.cfg';

async function listen(t: ExecutionContext, options: Omit<MasterOptions, 'store'>): Promise<number> {
  const app = await buildMaster({ store: new SqliteStore(path.join(tempDir(t), 'proxy.db')), ...options });
  t.teardown(() => app.close());
  return listenOnLoopback(app);
}

test('forwarding uses the section identity: a user certificate is accepted by the other master, a computer certificate refused (502, nothing allocated)', async (t) => {
  const ssl = path.join(tempDir(t), 'ssl');
  const init = await execa('node', [BIN, 'proxy', 'init-ca', '--dir', ssl, '--computer', 'COMP-B', '--user', 'admin'], { reject: false });
  t.is(init.exitCode, 0, init.stderr);
  const file = (name: string) => readFileSync(path.join(ssl, name));
  const bPort = await listen(t, { defaultComputer: 'COMP-B', https: { key: file('server.key'), cert: file('server.crt'), ca: file('ca.crt') } });
  const bUrl = `https://localhost:${bPort}/`;
  const b = new SlapClient(bUrl, { tls: { ca: file('ca.crt'), key: file('computer-COMP-B.key'), cert: file('computer-COMP-B.crt') } });
  t.teardown(() => b.close());
  await b.loadComputerConfigurationFromXML(computer('COMP-B', 2));

  const forwarding = async (identity: string) => {
    const port = await listen(t, {
      defaultComputer: 'COMP-A',
      multimaster: [{
        url: bUrl, key: path.join(ssl, `${identity}.key`), cert: path.join(ssl, `${identity}.crt`),
        masterCaFile: path.join(ssl, 'ca.crt'), softwareReleases: [FORWARDED],
      }],
    });
    const a = new SlapClient(`http://127.0.0.1:${port}/`);
    t.teardown(() => a.close());
    return a;
  };
  const asUser = await forwarding('user-admin');
  const fwd = await asUser.requestComputerPartition(FORWARDED, 'fwd');
  t.is(fwd.computerId, 'COMP-B');
  t.is((await b.getFullComputerInformation('COMP-B')).partitions[0]?.parameters?.instance_title, 'user_fwd');
  const asComputer = await forwarding('computer-COMP-B');
  await t.throwsAsync(asComputer.requestComputerPartition(FORWARDED, 'other'), { instanceOf: SlapHttpError, message: /HTTP 502.*HTTP 403/ });
  t.is((await b.getFullComputerInformation('COMP-B')).partitions[1]?.softwareRelease, null);
});
