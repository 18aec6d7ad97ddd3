// `slapos configure local`: a single machine from scratch, as the reference's
// slapos/cli/configure_local does with slapproxy: the master (our `proxy
// start`, [slapproxy] of the same slapos.cfg), the node's slapos.cfg (from
// slapos.cfg.example), the CA and certificates (as `proxy init-ca`: the
// master's server certificate, the node's computer certificate, a user
// certificate for the client), the client configuration, and the systemd
// units (as `node install-systemd`). Every target path is an option, so a
// test sets one up in a temporary directory.
import { Command } from 'commander';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isIP } from 'node:net';
import path from 'node:path';
import { defineAction } from '../context.js';
import { CliError, Exit } from '../exit.js';
import { checkInterfaceName, checkIpv4Network } from './option-checks.js';

/** The reference's computer id for a local node. */
export const LOCAL_COMPUTER_ID = 'local_computer';

export interface LocalPlan {
  configurationDirectory: string;
  buildoutDirectory: string;
  instanceRoot: string;
  softwareRoot: string;
  interfaceName: string;
  partitionNumber: number;
  ipv4LocalNetwork: string;
  listenIp: string;
  listenPort: number;
  tls: boolean;
  user: string;
}

/** The URL the node and the client use: https when the master asks client certificates. */
export function masterUrlOf(plan: Pick<LocalPlan, 'listenIp' | 'listenPort' | 'tls'>): string {
  const host = isIP(plan.listenIp) === 6 ? `[${plan.listenIp}]` : plan.listenIp;
  return `${plan.tls ? 'https' : 'http'}://${host}:${plan.listenPort}`;
}

export const sslDirOf = (plan: Pick<LocalPlan, 'configurationDirectory'>) => path.join(plan.configurationDirectory, 'ssl');

/** The keys configure local sets in slapos.cfg.example (the reference's, plus the master's and the certificates). */
export function localKeys(plan: LocalPlan): Record<string, Record<string, string>> {
  const ssl = sslDirOf(plan);
  const certs = (entries: Record<string, string>) => (plan.tls ? entries : {});
  const home = plan.buildoutDirectory;
  return {
    slapos: {
      computer_id: LOCAL_COMPUTER_ID, master_url: masterUrlOf(plan),
      software_root: plan.softwareRoot, instance_root: plan.instanceRoot,
      ...certs({
        key_file: path.join(ssl, `computer-${LOCAL_COMPUTER_ID}.key`), cert_file: path.join(ssl, `computer-${LOCAL_COMPUTER_ID}.crt`),
        master_ca_file: path.join(ssl, 'ca.crt'),
      }),
      certificate_repository_path: path.join(ssl, 'partition_pki'),
      pidfile_software: path.join(home, 'slapgrid-sr.pid'), pidfile_instance: path.join(home, 'slapgrid-cp.pid'),
      pidfile_report: path.join(home, 'slapgrid-ur.pid'),
    },
    slapformat: {
      interface_name: plan.interfaceName, ipv4_local_network: plan.ipv4LocalNetwork, partition_amount: String(plan.partitionNumber),
      computer_xml: path.join(home, 'slapos.xml'), computer_json: path.join(home, 'slapos.json'),
    },
    slapproxy: {
      host: plan.listenIp, port: String(plan.listenPort), database_uri: path.join(home, 'proxy.db'), computer_id: LOCAL_COMPUTER_ID,
      ...certs({
        server_key_file: path.join(ssl, 'server.key'), server_cert_file: path.join(ssl, 'server.crt'),
        ca_file: path.join(ssl, 'ca.crt'), ca_key_file: path.join(ssl, 'ca.key'),
      }),
    },
  };
}

/** Checks the options; throws a CliError before anything is written. */
export function checkLocalPlan(plan: LocalPlan): void {
  if (!Number.isInteger(plan.partitionNumber) || plan.partitionNumber < 1 || plan.partitionNumber > 4096) {
    throw new CliError(`--partition-number: a count from 1 to 4096, not ${String(plan.partitionNumber)}`);
  }
  if (!Number.isInteger(plan.listenPort) || plan.listenPort < 1 || plan.listenPort > 65535) throw new CliError(`--daemon-listen-port: not a port: ${String(plan.listenPort)}`);
  if (isIP(plan.listenIp) === 0) throw new CliError(`--daemon-listen-ip: not an IP address: ${plan.listenIp}`);
  checkIpv4Network('--ipv4-local-network', plan.ipv4LocalNetwork);
  checkInterfaceName('--interface-name', plan.interfaceName);
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(plan.user)) throw new CliError(`--user: not a user name: ${plan.user}`);
  for (const [option, dir] of [['--slapos-configuration-directory', plan.configurationDirectory], ['--slapos-buildout-directory', plan.buildoutDirectory],
    ['--slapos-instance-root', plan.instanceRoot], ['--slapos-software-root', plan.softwareRoot]] as const) {
    if (!path.isAbsolute(dir) || /[\s%$'"\\]/.test(dir)) throw new CliError(`${option}: an absolute path without spaces, %, $, quotes or backslashes, not ${JSON.stringify(dir)}`);
  }
}

export function configureLocalCommand(): Command {
  const command = new Command('local')
    .summary('set up this machine from scratch: master, node configuration, certificates, systemd units')
    .description('As the reference\'s configure local (which uses slapproxy): writes <slapos-configuration-directory>/slapos.cfg ' +
      `(computer_id ${LOCAL_COMPUTER_ID}, master_url of the local master, [slapformat] and [slapproxy] filled), creates the CA and ` +
      'the certificates in ssl/ as `slapos proxy init-ca` does (the master\'s, the computer\'s, a user\'s; --no-tls: plain HTTP on ' +
      'the listening address, as the reference), the client configuration <client-configuration-directory>/slapos-client.cfg ' +
      '(kept if it exists), the buildout, instance and software directories, and the systemd units under --systemd-root (as ' +
      '`slapos node install-systemd`). With --enable the master, boot (format) and the node\'s timers are enabled and started. ' +
      'An existing slapos.cfg stops it before anything is written.\n\nExit status: 0 done, 1 refused or failed, 5 not root.')
    .option('--interface-name <name>', 'primary network interface; partition addresses are added to it', 'lo')
    .option('--partition-number <n>', 'number of partitions', '20')
    .option('--ipv4-local-network <cidr>', "subnetwork of the partitions' local IPv4 addresses", '10.0.0.0/16')
    .option('--daemon-listen-ip <ip>', 'listening address of the master', '127.0.0.1')
    .option('--daemon-listen-port <port>', 'listening port of the master', '8080')
    .option('--slapos-instance-root <dir>', 'instance root (partitions)', '/srv/slapgrid')
    .option('--slapos-software-root <dir>', 'software root', '/opt/slapgrid')
    .option('--slapos-buildout-directory <dir>', "the master's database, pid files, logs, slapos.xml", '/opt/slapos')
    .option('--slapos-configuration-directory <dir>', 'where slapos.cfg and ssl/ go', '/etc/opt/slapos')
    .option('--client-configuration-directory <dir>', 'where slapos-client.cfg goes (ours)', path.join(homedir(), '.slapos'))
    .option('--user <name>', 'name in the client\'s user certificate (ours)', 'admin')
    .option('--no-tls', 'no certificates: the master on plain HTTP (the reference\'s setup)')
    .option('--systemd-root <dir>', 'install the units under this root instead of / (ours; packaging, tests)', '/')
    .option('--no-systemd', 'write no systemd unit')
    .option('--enable', 'enable and start the master, boot and the node timers (systemctl)');
  return defineAction(command, async (ctx, _args, options) => {
    if (process.getuid?.() !== 0) throw new CliError('this command must be run as root', Exit.NOT_ROOT);
    const plan: LocalPlan = {
      configurationDirectory: path.resolve(String(options.slaposConfigurationDirectory)), buildoutDirectory: path.resolve(String(options.slaposBuildoutDirectory)),
      instanceRoot: path.resolve(String(options.slaposInstanceRoot)), softwareRoot: path.resolve(String(options.slaposSoftwareRoot)),
      interfaceName: String(options.interfaceName), partitionNumber: Number(options.partitionNumber), ipv4LocalNetwork: String(options.ipv4LocalNetwork),
      listenIp: String(options.daemonListenIp), listenPort: Number(options.daemonListenPort), tls: options.tls !== false, user: String(options.user),
    };
    checkLocalPlan(plan);
    if (options.enable && options.systemd === false) throw new CliError('--enable needs the systemd units (drop --no-systemd)');
    const cfg = path.join(plan.configurationDirectory, 'slapos.cfg');
    if (existsSync(cfg)) throw new CliError(`A SlapOS configuration already exists at ${cfg}. Aborting (nothing was changed).`);
    const [{ setKeys }, systemd, { readFileSync }] = await Promise.all([import('../../config/set-keys.js'), import('../../node/systemd.js'), import('node:fs')]);
    const template = readFileSync(path.join(systemd.PROJECT_DIR, 'slapos.cfg.example'), 'utf8');
    const units = options.systemd === false ? undefined : systemd.renderUnits(systemd.unitVars({
      node: process.execPath, project: systemd.PROJECT_DIR, configFile: cfg, databaseUri: path.join(plan.buildoutDirectory, 'proxy.db'),
    }));

    mkdirSync(plan.configurationDirectory, { recursive: true, mode: 0o755 });
    const ssl = sslDirOf(plan);
    mkdirSync(path.join(ssl, 'partition_pki'), { recursive: true, mode: 0o711 });
    const client = path.resolve(String(options.clientConfigurationDirectory));
    const clientLines = ['[slapos]', `master_url = ${masterUrlOf(plan)}`];
    if (plan.tls) {
      const { createCa, issueCertificate } = await import('../../master/certificates.js');
      const ca = { certFile: path.join(ssl, 'ca.crt'), keyFile: path.join(ssl, 'ca.key') };
      await createCa(ca.certFile, ca.keyFile);
      const names = [...new Set(['localhost', plan.listenIp, '127.0.0.1', '::1'])];
      for (const [role, name, base, sans] of [['server', 'localhost', 'server', names], ['computer', LOCAL_COMPUTER_ID, `computer-${LOCAL_COMPUTER_ID}`, []],
        ['user', plan.user, `user-${plan.user}`, []]] as const) {
        const pair = await issueCertificate(ca, role, name, [...sans]);
        writeFileSync(path.join(ssl, `${base}.key`), pair.key, { mode: 0o600 });
        writeFileSync(path.join(ssl, `${base}.crt`), pair.certificate, { mode: 0o644 });
      }
      ctx.out(`created the CA and the master's, ${LOCAL_COMPUTER_ID}'s and ${plan.user}'s certificates in ${ssl}`);
      clientLines.push(`master_ca_file = ${ca.certFile}`, `cert_file = ${path.join(ssl, `user-${plan.user}.crt`)}`, `key_file = ${path.join(ssl, `user-${plan.user}.key`)}`);
    }
    const text = setKeys(template, localKeys(plan));
    writeFileSync(cfg, text.endsWith('\n') ? text : `${text}\n`, { mode: 0o640 });
    ctx.out(`wrote ${cfg}`);
    mkdirSync(path.join(plan.buildoutDirectory, 'log'), { recursive: true, mode: 0o700 });
    for (const dir of [plan.instanceRoot, plan.softwareRoot]) mkdirSync(dir, { recursive: true, mode: 0o755 });
    const clientCfg = path.join(client, 'slapos-client.cfg');
    if (existsSync(clientCfg)) {
      ctx.log.warn({ file: clientCfg }, 'client configuration kept as it is');
    } else {
      mkdirSync(client, { recursive: true, mode: 0o700 });
      writeFileSync(clientCfg, `${clientLines.join('\n')}\n`, { mode: 0o600 });
      ctx.out(`wrote ${clientCfg}`);
    }
    if (units) {
      const root = path.resolve(String(options.systemdRoot));
      const dir = systemd.unitDir(root);
      const written = systemd.installUnits(units, dir);
      ctx.out(written.length ? `installed ${written.length} units in ${dir}` : `units in ${dir} are up to date`);
      if (root === '/' && systemd.systemdRunning()) systemd.systemctl(['daemon-reload'], root);
      if (options.enable) {
        const enable = [systemd.PROXY_UNIT, ...systemd.DEFAULT_ENABLED];
        systemd.systemctl(['enable', '--now', ...enable], root);
        ctx.out(`enabled ${enable.join(', ')}`);
        return;
      }
    }
    ctx.out(`next: start the master (systemctl enable --now ${'slapos-proxy.service'}, or slapos proxy start --cfg ${cfg}), ` +
      `then slapos node format --cfg ${cfg}; or rerun with --enable`);
  });
}
