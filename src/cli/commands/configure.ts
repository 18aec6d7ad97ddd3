// `slapos configure client`: writes the client configuration
// (<dir>/slapos-client.cfg, default ~/.slapos) that `request`, `supply`,
// `service`, `computer` and `console` read, with the user's certificate and
// key copied beside it (as the reference's configure client does).
import { Command } from 'commander';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { defineAction } from '../context.js';
import { CliError } from '../exit.js';
import { configureLocalCommand } from './configure-local.js';
import { checkUrlOptions, readPairOptions } from './option-checks.js';

export function configureCommand(): Command {
  const configure = new Command('configure').summary('write a client configuration, or set up a single machine from scratch');
  const client = new Command('client')
    .summary('write ~/.slapos/slapos-client.cfg (master URL, certificate and key) for the client commands')
    .description('Writes <dir>/slapos-client.cfg ([slapos] master_url, master_rest_url; [slapconsole] cert_file, key_file) ' +
      'and copies --cert-file and --key-file to <dir>/certificate and <dir>/key (0600). An existing file is kept unless --force.')
    .requiredOption('--master-url <url>', "the master's URL")
    .option('--master-rest-url <url>', 'its HATEOAS root (default <master-url>/hateoas)')
    .option('--cert-file <file>', 'your client certificate (PEM)')
    .option('--key-file <file>', 'its private key (PEM)')
    .option('--slapos-configuration-directory <dir>', 'where to write', path.join(homedir(), '.slapos'))
    .option('--force', 'overwrite an existing configuration');
  configure.addCommand(defineAction(client, (ctx, _args, options) => {
    const dir = path.resolve(String(options.slaposConfigurationDirectory));
    const cfg = path.join(dir, 'slapos-client.cfg');
    checkUrlOptions(options, { masterUrl: '--master-url', masterRestUrl: '--master-rest-url' });
    const pair = readPairOptions('--cert-file', options.certFile, '--key-file', options.keyFile);
    if (existsSync(cfg) && !options.force) throw new CliError(`${cfg} already exists (add --force to overwrite it)`);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const lines = ['[slapos]', `master_url = ${String(options.masterUrl)}`];
    if (options.masterRestUrl !== undefined) lines.push(`master_rest_url = ${String(options.masterRestUrl)}`);
    lines.push('', '[slapconsole]');
    if (pair) {
      const cert = path.join(dir, 'certificate');
      const key = path.join(dir, 'key');
      writeFileSync(key, pair.key, { mode: 0o600 });
      chmodSync(key, 0o600);
      writeFileSync(cert, pair.certificate, { mode: 0o644 });
      // [slapconsole] for the console, [slapos] for the other client commands (as the reference's file).
      lines.push(`cert_file = ${cert}`, `key_file = ${key}`);
      lines.splice(2, 0, `cert_file = ${cert}`, `key_file = ${key}`);
    }
    writeFileSync(cfg, `${lines.join('\n')}\n`, { mode: 0o600 });
    ctx.out(`wrote ${cfg}`);
  }));
  configure.addCommand(configureLocalCommand());
  return configure;
}
