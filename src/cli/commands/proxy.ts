import { Command } from 'commander';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
// The master's code (fastify, SQLite, pg) is loaded inside the actions, so
// that node commands do not pay for it at start-up.
import type { CaFiles, Role } from '../../master/certificates.js';
import { defineAction } from '../context.js';
import { CliError } from '../exit.js';
import { pruneCacheCommand } from './proxy-prune-cache.js';

export function proxyCommand(): Command {
  const proxy = new Command('proxy').summary('the minimal SLAP master (the role of slapproxy)');
  const start = new Command('start')
    .summary('serve the SLAP API from the [slapproxy] section (host, port, database_uri)')
    .description(
      'Starts the master: the legacy SLAP API that SlapOS nodes and clients speak, backed by SQLite ' +
        '(a file path in database_uri) or PostgreSQL (a postgresql:// URI). Without TLS it binds to ' +
        'loopback unless [slapproxy] allow_insecure_bind = true. Stops cleanly on SIGTERM.',
    )
    .option('--host <host>', 'address to listen on ([slapproxy] host)')
    .option('--port <port>', 'port to listen on ([slapproxy] port)')
    .option('-u, --database-uri <uri>', 'SQLite file or postgresql:// URI ([slapproxy] database_uri)')
    .option('--local-software-release-root <dir>', 'where local software release paths live ([slapproxy] local_software_release_root, ' +
      'default /); when it differs from the last run\'s, the stored paths under the old root are rebased under this one (the database is backed up first)');
  proxy.addCommand(
    defineAction(start, async (ctx, _args, options) => {
      const { overrideKeys } = await import('../../config/override.js');
      const given: Record<string, string> = {};
      for (const [option, key] of [['host', 'host'], ['port', 'port'], ['databaseUri', 'database_uri'], ['localSoftwareReleaseRoot', 'local_software_release_root']] as const) {
        if (options[option] !== undefined) given[key] = key === 'local_software_release_root' ? path.resolve(String(options[option])) : String(options[option]);
      }
      // No `computer` bound on the master's lines: its request lines name the computer each request is about.
      const config = overrideKeys(ctx.config({ bindComputer: false }), 'slapproxy', given, (key) => `--${key.replaceAll('_', '-')}`);
      const computerId = config.slapproxy.computer_id ?? config.slapos.computer_id;
      if (!computerId) throw new CliError(`${ctx.configFile}: set [slapproxy] computer_id or [slapos] computer_id`);
      const { startMaster } = await import('../../master/server.js');
      const { MULTIMASTER_KEYS, parseMultimasterSections, unknownMultimasterKeys } = await import('../../master/multimaster.js');
      const { ignoredHint } = await import('../../config/suggest.js');
      for (const key of unknownMultimasterKeys(config.raw)) ctx.log.warn({ code: 'CONFIG_UNKNOWN_KEY', key, hint: ignoredHint(key.slice(key.indexOf('] ') + 2), MULTIMASTER_KEYS).trim() }, 'unknown key');
      let started;
      try {
        const multimaster = parseMultimasterSections(config.raw);
        // One INFO line per request (src/master/server.ts): always in --log-file, on stderr with -v only
        // (a fleet polls twice a minute per computer); warnings always. Its own logger, as pino's levels are per logger.
        const { createLogger } = await import('../../util/log.js');
        const serverLog = createLogger({ verbose: ctx.globals.verbose, quiet: !ctx.globals.verbose, logFile: ctx.globals.logFile });
        // Without TLS, a local partition user is known by the partition directory it owns (docs/master.md).
        // On the unix socket ([slapproxy] unix_socket), by its SO_PEERCRED (the native addon).
        // On loopback TCP, by the uid owning the client's socket (NETLINK_SOCK_DIAG, one lookup per connection).
        const addon = (await import('../../native/index.js')).native();
        const peerCredentials = config.slapproxy.unix_socket ? addon.peerCredentials : undefined;
        started = await startMaster(config.slapproxy, computerId, serverLog, multimaster, {
          instanceRoot: config.slapos.instance_root, computer: config.slapos.computer_id ?? computerId, peerCredentials, tcpSocketUid: addon.tcpSocketUid,
        });
      } catch (error) {
        throw new CliError(`cannot start the master: ${error instanceof Error ? error.message : String(error)}`);
      }
      const { app, url } = started;
      ctx.log.info({ url, unix_socket: config.slapproxy.unix_socket, database: config.slapproxy.database_uri, computer_id: computerId }, 'master listening');
      // Close on the first signal: in-flight transactions finish, the database is closed.
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          ctx.log.info({ signal }, 'master stopping');
          app.close().then(resolve, resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      ctx.log.info('master stopped');
      return 0;
    }),
  );
  proxy.addCommand(initCaCommand());
  proxy.addCommand(pruneCacheCommand());
  proxy.addCommand(showCommand());
  return proxy;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

function showCommand(): Command {
  const command = new Command('show')
    .summary("list the master's database: computers, software, partitions, shared instances, parameters, addresses")
    .description("The reference's listing (slapos proxy show), read from our database ([slapproxy] database_uri or -u). " +
      'Every part unless some are chosen. Tables have our columns (no "17" suffix).')
    .option('-u, --database-uri <uri>', 'SQLite file or postgresql:// URI ([slapproxy] database_uri)')
    .option('--computers', 'view computer information')
    .option('--software', 'view software releases')
    .option('--partitions', 'view partitions')
    .option('--slaves', 'view shared (slave) instances')
    .option('--params', 'view published parameters')
    .option('--network', 'view network settings');
  return defineAction(command, async (ctx, _args, options) => {
    const uri = options.databaseUri !== undefined ? String(options.databaseUri) : ctx.config().slapproxy.database_uri;
    const [{ openStore }, { SHOW_PARTS, showDatabase }] = await Promise.all([import('../../master/server.js'), import('../../master/show.js')]);
    // A listing never creates a database: a missing file is an error, not an empty master.
    if (!/^postgres(ql)?:\/\//.test(uri) && !existsSync(uri)) throw new CliError(`${uri}: no such database`);
    const store = await openStore(uri, false);
    try {
      const lines = await showDatabase(store, SHOW_PARTS.filter((part) => options[part] === true));
      ctx.out(lines.join('\n'));
    } finally {
      await store.close();
    }
    return 0;
  });
}

/** Writes a key (0600) and certificate pair; refuses to overwrite. */
function writePair(dir: string, base: string, pem: { certificate: string; key: string }): string[] {
  const crt = path.join(dir, `${base}.crt`);
  const key = path.join(dir, `${base}.key`);
  for (const file of [crt, key]) if (existsSync(file)) throw new CliError(`${file} already exists: remove it to issue a new one`);
  writeFileSync(key, pem.key, { mode: 0o600 });
  writeFileSync(crt, pem.certificate, { mode: 0o644 });
  return [crt, key];
}

/** Where the node keeps its partitions' certificates by default under `init-ca --configure`. */
export const PARTITION_PKI = 'partition_pki';

/**
 * The keys `init-ca --configure` sets: the master serves HTTPS with client
 * certificates and issues partition certificates; the node speaks https:// with
 * its computer certificate and keeps partition certificates in
 * `certificate_repository_path` (unless the file names one already).
 */
export function tlsKeys(dir: string, o: { computer: string; host: string; port: number; repository?: string | undefined }): Record<string, Record<string, string>> {
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  return {
    slapproxy: {
      server_key_file: path.join(dir, 'server.key'), server_cert_file: path.join(dir, 'server.crt'),
      ca_file: path.join(dir, 'ca.crt'), ca_key_file: path.join(dir, 'ca.key'),
    },
    slapos: {
      master_url: `https://${host}:${o.port}`,
      key_file: path.join(dir, `computer-${o.computer}.key`), cert_file: path.join(dir, `computer-${o.computer}.crt`),
      master_ca_file: path.join(dir, 'ca.crt'),
      ...(o.repository ? {} : { certificate_repository_path: path.join(dir, PARTITION_PKI) }),
    },
  };
}

function initCaCommand(): Command {
  const command = new Command('init-ca')
    .summary('create the master CA, its server certificate and first computer/user certificates (uses openssl)')
    .description(
      'Creates DIR/ca.crt and DIR/ca.key (kept if they exist, so the command can be rerun to add certificates), ' +
        'DIR/server.crt|key for the master (--server-name, default localhost, 127.0.0.1 and ::1), ' +
        'DIR/computer-<id>.crt|key for each --computer and DIR/user-<name>.crt|key for each --user. ' +
        'Prints the [slapproxy] and [slapos] settings that use them.\n\n' +
        'With --configure FILE (what install.sh --proxy runs) the settings are written into FILE instead: the master ' +
        'then serves HTTPS only, the node uses https:// with the certificate of FILE\'s computer_id (issued if missing) ' +
        'and writes each partition\'s certificate and key in certificate_repository_path (DIR/' + PARTITION_PKI + ' unless set; ' +
        'mode 0711: a partition user opens its own files by name and lists nothing). A FILE whose [slapproxy] already ' +
        'has server_key_file is left as it is. With --client-configuration FILE the first --user\'s (default admin) ' +
        'certificate goes into a client configuration (kept if it exists) for supply, request, list and info. ' +
        'Rerunning changes nothing.',
    )
    .requiredOption('--dir <dir>', 'directory for the CA and certificates')
    .option('--computer <id>', 'issue a computer certificate (repeatable)', collect)
    .option('--user <name>', 'issue a user certificate (repeatable)', collect)
    .option('--server-name <name>', 'DNS name or IP of the master (repeatable)', collect)
    .option('--configure <file>', "write the settings into this slapos.cfg (the master's and the node's)")
    .option('--client-configuration <file>', "write the user's settings into this client configuration (0600; kept if it exists)");
  return defineAction(command, async (ctx, _args, options) => {
    const [{ createCa, issueCertificate }, { checkId }] = await Promise.all([
      import('../../master/certificates.js'), import('../../master/validate.js'),
    ]);
    const dir = path.resolve(String(options.dir));
    const configure = options.configure === undefined ? undefined : path.resolve(String(options.configure));
    const clientFile = options.clientConfiguration === undefined ? undefined : path.resolve(String(options.clientConfiguration));
    const computers = (options.computer as string[] | undefined) ?? [];
    const users = (options.user as string[] | undefined) ?? [];
    const serverNames = (options.serverName as string[] | undefined) ?? ['localhost', '127.0.0.1', '::1'];
    let config: import('../../config/load.js').SlaposConfig | undefined;
    let configText = '';
    if (configure) {
      const { parseConfig } = await import('../../config/load.js');
      try {
        configText = readFileSync(configure, 'utf8');
      } catch (error) {
        throw new CliError(`--configure: cannot read ${configure}: ${(error as Error).message}`);
      }
      config = parseConfig(configText, configure);
      const id = config.slapos.computer_id;
      if (computers.length === 0) {
        if (!id) throw new CliError(`--configure: ${configure} has no [slapos] computer_id (set it, or give --computer)`);
        computers.push(id);
      }
    }
    if (clientFile && users.length === 0) users.push('admin');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ca: CaFiles = { certFile: path.join(dir, 'ca.crt'), keyFile: path.join(dir, 'ca.key') };
    const created: string[] = [];
    // Under --configure or --client-configuration a pair that exists is kept (reruns change nothing).
    const keep = configure !== undefined || clientFile !== undefined;
    try {
      if (!existsSync(ca.certFile) || !existsSync(ca.keyFile)) {
        await createCa(ca.certFile, ca.keyFile);
        created.push(ca.certFile, ca.keyFile);
      }
      const issue = async (role: Role, name: string, base: string, names: string[] = []) => {
        const exists = existsSync(path.join(dir, `${base}.crt`));
        if (exists && keep && existsSync(path.join(dir, `${base}.key`))) return;
        if (exists) throw new CliError(`${path.join(dir, `${base}.crt`)} already exists`);
        created.push(...writePair(dir, base, await issueCertificate(ca, role, name, names)));
      };
      if (!existsSync(path.join(dir, 'server.crt'))) await issue('server', serverNames[0] ?? 'localhost', 'server', serverNames);
      for (const id of computers) await issue('computer', checkId('computer id', id), `computer-${id}`);
      for (const name of users) await issue('user', checkId('user name', name), `user-${name}`);
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError(error instanceof Error ? error.message : String(error));
    }
    const computer = computers[0] ?? '<id>';
    const user = users[0] ?? '<name>';
    // The name clients use: the master's listening address when the server certificate holds it.
    const listen = config?.slapproxy.host;
    const host = listen && serverNames.includes(listen) ? listen : serverNames[0] ?? 'localhost';
    const port = config ? String(config.slapproxy.port) : '<port>';
    const masterUrl = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const out = created.map((f) => `created ${f}`);
    if (configure && config) {
      if (config.slapproxy.server_key_file) {
        out.push(`${configure} already serves TLS ([slapproxy] server_key_file is set): left as it is`);
      } else {
        const { setKeys } = await import('../../config/set-keys.js');
        const repository = config.slapos.certificate_repository_path;
        const text = setKeys(configText, tlsKeys(dir, { computer, host, port: config.slapproxy.port, repository }));
        const mode = statSync(configure).mode & 0o7777;
        writeFileSync(`${configure}.tmp`, text.endsWith('\n') ? text : `${text}\n`, { mode });
        renameSync(`${configure}.tmp`, configure);
        out.push(`configured ${configure}: the master serves HTTPS with client certificates, the node uses ${masterUrl}/ as ${computer}`);
      }
      // Partition users open their own certificate files by name, through DIR: search only.
      chmodSync(dir, 0o711);
      // Made here only beneath DIR (elsewhere, format makes it, 0711 as well).
      const repository = config.slapos.certificate_repository_path ?? path.join(dir, PARTITION_PKI);
      if (path.dirname(repository) === dir && !existsSync(repository)) {
        mkdirSync(repository, { recursive: true, mode: 0o711 });
        chmodSync(repository, 0o711);
        out.push(`created ${repository} (partition certificates, 0711)`);
      }
    }
    if (clientFile) {
      if (existsSync(clientFile)) {
        out.push(`${clientFile} kept as it is`);
      } else {
        mkdirSync(path.dirname(clientFile), { recursive: true, mode: 0o700 });
        writeFileSync(clientFile, ['[slapos]', `master_url = ${masterUrl}`, `key_file = ${path.join(dir, `user-${user}.key`)}`,
          `cert_file = ${path.join(dir, `user-${user}.crt`)}`, `master_ca_file = ${ca.certFile}`, ''].join('\n'), { mode: 0o600 });
        out.push(`wrote ${clientFile} (${user}'s certificate)`);
      }
    }
    if (configure || clientFile) {
      ctx.out(out.join('\n'));
      return 0;
    }
    const https = `master_url = ${masterUrl}`;
    ctx.out([
      ...out,
      '', '# master (slapos.cfg of `slapos proxy start`): it then serves HTTPS only', '[slapproxy]',
      `server_key_file = ${path.join(dir, 'server.key')}`, `server_cert_file = ${path.join(dir, 'server.crt')}`,
      `ca_file = ${ca.certFile}`, `ca_key_file = ${ca.keyFile}`,
      '', '# a node (slapos.cfg): master_url becomes https://, with the name the server certificate holds', '[slapos]', https,
      `key_file = ${path.join(dir, `computer-${computer}.key`)}`,
      `cert_file = ${path.join(dir, `computer-${computer}.crt`)}`, `master_ca_file = ${ca.certFile}`,
      '', '# a client (slapos-client.cfg, for slapos supply/request/list): the same https:// master_url', '[slapos]', https,
      `key_file = ${path.join(dir, `user-${user}.key`)}`,
      `cert_file = ${path.join(dir, `user-${user}.crt`)}`, `master_ca_file = ${ca.certFile}`,
    ].join('\n'));
    return 0;
  });
}
