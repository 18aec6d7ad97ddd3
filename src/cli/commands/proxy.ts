import { Command } from 'commander';
import { defineAction, notImplemented } from '../context.js';

export function proxyCommand(): Command {
  const proxy = new Command('proxy').summary('the minimal SLAP master (the role of slapproxy)');
  const start = new Command('start')
    .summary('serve the SLAP API from the [slapproxy] section (host, port, database_uri)')
    .description(
      'Starts the master: the legacy SLAP API that SlapOS nodes and clients speak, backed by SQLite ' +
        '(a file path in database_uri) or PostgreSQL (a postgresql:// URI). Without TLS it binds to ' +
        'loopback unless [slapproxy] allow_insecure_bind = true. Stops cleanly on SIGTERM.',
    );
  proxy.addCommand(defineAction(start, notImplemented('proxy start')));
  return proxy;
}
