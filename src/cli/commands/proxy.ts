import { Command } from 'commander';
import { defineAction } from '../context.js';
import { CliError } from '../exit.js';

export function proxyCommand(): Command {
  const proxy = new Command('proxy').summary('the minimal SLAP master (the role of slapproxy)');
  const start = new Command('start')
    .summary('serve the SLAP API from the [slapproxy] section (host, port, database_uri)')
    .description(
      'Starts the master: the legacy SLAP API that SlapOS nodes and clients speak, backed by SQLite ' +
        '(a file path in database_uri) or PostgreSQL (a postgresql:// URI). Without TLS it binds to ' +
        'loopback unless [slapproxy] allow_insecure_bind = true. Stops cleanly on SIGTERM.',
    );
  proxy.addCommand(
    defineAction(start, async (ctx) => {
      const config = ctx.config();
      const computerId = config.slapproxy.computer_id ?? config.slapos.computer_id;
      if (!computerId) throw new CliError(`${ctx.configFile}: set [slapproxy] computer_id or [slapos] computer_id`);
      // fastify, SQLite and the master are loaded for this command only.
      const { startMaster } = await import('../../master/server.js');
      let started;
      try {
        started = await startMaster(config.slapproxy, computerId, ctx.log);
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
  return proxy;
}
