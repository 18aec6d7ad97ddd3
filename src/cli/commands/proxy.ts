import { Command } from 'commander';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
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
    .option('-u, --database-uri <uri>', 'SQLite file or postgresql:// URI ([slapproxy] database_uri)');
  proxy.addCommand(
    defineAction(start, async (ctx, _args, options) => {
      const { overrideKeys } = await import('../../config/override.js');
      const given: Record<string, string> = {};
      for (const [option, key] of [['host', 'host'], ['port', 'port'], ['databaseUri', 'database_uri']] as const) {
        if (options[option] !== undefined) given[key] = String(options[option]);
      }
      const config = overrideKeys(ctx.config(), 'slapproxy', given, (key) => `--${key.replace('_', '-')}`);
      const computerId = config.slapproxy.computer_id ?? config.slapos.computer_id;
      if (!computerId) throw new CliError(`${ctx.configFile}: set [slapproxy] computer_id or [slapos] computer_id`);
      const { startMaster } = await import('../../master/server.js');
      const { MULTIMASTER_KEYS, parseMultimasterSections, unknownMultimasterKeys } = await import('../../master/multimaster.js');
      const { ignoredHint } = await import('../../config/suggest.js');
      for (const key of unknownMultimasterKeys(config.raw)) ctx.log.warn({ code: 'CONFIG_UNKNOWN_KEY', key, hint: ignoredHint(key.slice(key.indexOf('] ') + 2), MULTIMASTER_KEYS).trim() }, 'unknown key');
      let started;
      try {
        const multimaster = parseMultimasterSections(config.raw);
        // fastify logs two INFO lines per request and its own "listening" line: shown with -v only (warnings always).
        const serverLog = ctx.log.child({}, { level: ctx.globals.verbose ? 'debug' : 'warn' });
        // Without TLS, a local partition user is known by the partition directory it owns (docs/master.md).
        started = await startMaster(config.slapproxy, computerId, serverLog, multimaster, {
          instanceRoot: config.slapos.instance_root, computer: config.slapos.computer_id ?? computerId,
        });
      } catch (error) {
        throw new CliError(`cannot start the master: ${error instanceof Error ? error.message : String(error)}`);
      }
      const { app, url } = started;
      ctx.log.info({ url, database: config.slapproxy.database_uri, computer_id: computerId }, 'master listening');
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

function initCaCommand(): Command {
  const command = new Command('init-ca')
    .summary('create the master CA, its server certificate and first computer/user certificates (uses openssl)')
    .description(
      'Creates DIR/ca.crt and DIR/ca.key (kept if they exist, so the command can be rerun to add certificates), ' +
        'DIR/server.crt|key for the master (--server-name, default localhost and 127.0.0.1), ' +
        'DIR/computer-<id>.crt|key for each --computer and DIR/user-<name>.crt|key for each --user. ' +
        'Prints the [slapproxy] and [slapos] settings that use them.',
    )
    .requiredOption('--dir <dir>', 'directory for the CA and certificates')
    .option('--computer <id>', 'issue a computer certificate (repeatable)', collect)
    .option('--user <name>', 'issue a user certificate (repeatable)', collect)
    .option('--server-name <name>', 'DNS name or IP of the master (repeatable)', collect);
  return defineAction(command, async (ctx, _args, options) => {
    const [{ createCa, issueCertificate }, { checkId }] = await Promise.all([
      import('../../master/certificates.js'), import('../../master/validate.js'),
    ]);
    const dir = path.resolve(String(options.dir));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ca: CaFiles = { certFile: path.join(dir, 'ca.crt'), keyFile: path.join(dir, 'ca.key') };
    const created: string[] = [];
    try {
      if (!existsSync(ca.certFile) || !existsSync(ca.keyFile)) {
        await createCa(ca.certFile, ca.keyFile);
        created.push(ca.certFile, ca.keyFile);
      }
      const issue = async (role: Role, name: string, base: string, names: string[] = []) => {
        if (existsSync(path.join(dir, `${base}.crt`))) throw new CliError(`${path.join(dir, `${base}.crt`)} already exists`);
        created.push(...writePair(dir, base, await issueCertificate(ca, role, name, names)));
      };
      if (!existsSync(path.join(dir, 'server.crt'))) {
        const names = (options.serverName as string[] | undefined) ?? ['localhost', '127.0.0.1', '::1'];
        await issue('server', names[0] ?? 'localhost', 'server', names);
      }
      for (const id of (options.computer as string[] | undefined) ?? []) await issue('computer', checkId('computer id', id), `computer-${id}`);
      for (const name of (options.user as string[] | undefined) ?? []) await issue('user', checkId('user name', name), `user-${name}`);
    } catch (error) {
      if (error instanceof CliError) throw error;
      throw new CliError(error instanceof Error ? error.message : String(error));
    }
    const computer = ((options.computer as string[] | undefined) ?? [])[0] ?? '<id>';
    const user = ((options.user as string[] | undefined) ?? [])[0] ?? '<name>';
    const host = ((options.serverName as string[] | undefined) ?? [])[0] ?? 'localhost';
    const https = `master_url = https://${host.includes(':') ? `[${host}]` : host}:<port>`;
    ctx.out([
      ...created.map((f) => `created ${f}`),
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
