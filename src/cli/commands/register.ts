// `slapos computer token` (a user asks the master a one-time registration
// token) and `slapos node register NAME --token T` (the node trades it for its
// computer certificate and key, then writes slapos.cfg and ssl/ as the
// reference's slapos/cli/register.py does). The master side: src/master/computer-token.ts.
import { Command, Option } from 'commander';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { defineAction, type CommandContext } from '../context.js';
import { CliError, Exit } from '../exit.js';
import { clientSettings } from './client.js';
import { checkInterfaceName, checkIpv4Network, checkUrlOptions, readOptionFile } from './option-checks.js';

interface Posted { status: number; text: string }

async function post(url: string, init: { headers?: Record<string, string>; body?: string; tls?: Record<string, unknown> | undefined }): Promise<Posted> {
  const { Agent, request } = await import('../../vendor/undici.js');
  const dispatcher = new Agent({ connect: { ...(init.tls ?? {}) }, headersTimeout: 60_000, bodyTimeout: 60_000 });
  try {
    const res = await request(url, { method: 'POST', dispatcher, headers: init.headers ?? {}, ...(init.body !== undefined ? { body: init.body } : {}) });
    return { status: res.statusCode, text: await res.body.text() };
  } catch (error) {
    throw new CliError(`${url}: cannot reach the master: ${(error as Error).message}`);
  } finally {
    await dispatcher.close();
  }
}

const under = (base: string, leaf: string) => new URL(leaf, base.endsWith('/') ? base : `${base}/`).href;

export function computerTokenCommand(): Command {
  const command = new Command('token')
    .summary('ask the master a one-time token that registers a computer (`slapos node register NAME --token T`)')
    .description('POSTs to <master_url>/computer-token as the user of the client configuration (~/.slapos/slapos-client.cfg ' +
      'or --cfg); prints a one-time token, valid for 24 hours. The master needs a CA (ca_file, ca_key_file) to hand out ' +
      'computer certificates. Our master only: the reference asks it through the SlapOS web service.')
    .option('--json', 'print {"token", "expires_at"}');
  return defineAction(command, async (ctx, _args, options) => {
    const { url, options: client } = await clientSettings(ctx.globals.cfg);
    const res = await post(under(url, 'computer-token'), { tls: client.tls });
    if (res.status !== 200) throw new CliError(`the master refused a token (HTTP ${res.status}): ${res.text.trim().slice(0, 300)}`);
    const answer = JSON.parse(res.text) as { token: string; expires_at: string };
    ctx.out(options.json ? JSON.stringify(answer, null, 2) : answer.token);
  });
}

/** The computer reference a computer certificate names (its CN), as the reference reads COMP-… from it. */
export function computerIdOf(certificate: string): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certificate);
  } catch (error) {
    throw new CliError(`the master answered a certificate that does not parse: ${(error as Error).message}`);
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  if (!cn) throw new CliError(`the certificate the master answered names no computer (subject ${JSON.stringify(cert.subject)})`);
  return cn;
}

/** Where a former configuration directory goes: <dir>.old, then <dir>.old.1, .old.2, … (the reference's order). */
export function formerName(dir: string, exists: (p: string) => boolean): string {
  let candidate = `${dir}.old`;
  for (let n = 1; exists(candidate); n += 1) candidate = `${dir}.old.${n}`;
  return candidate;
}

export interface RegisterPlan {
  dir: string;
  computerId: string;
  masterUrl: string;
  interfaceName: string;
  ipv4LocalNetwork: string;
  ipv6Interface?: string | undefined;
  partitionNumber: number;
  createTap: boolean;
  masterCaFile?: string | undefined;
}

/** The [slapos]/[slapformat] keys register sets in slapos.cfg.example (the reference's list, plus master_ca_file). */
export function registerKeys(plan: RegisterPlan) {
  const ssl = path.join(plan.dir, 'ssl');
  return {
    slapos: {
      computer_id: plan.computerId, master_url: plan.masterUrl,
      key_file: path.join(ssl, 'key'), cert_file: path.join(ssl, 'certificate'),
      certificate_repository_path: path.join(ssl, 'partition_pki'),
      ...(plan.masterCaFile ? { master_ca_file: plan.masterCaFile } : {}),
    },
    slapformat: {
      interface_name: plan.interfaceName, ipv4_local_network: plan.ipv4LocalNetwork,
      partition_amount: String(plan.partitionNumber), create_tap: String(plan.createTap),
      ...(plan.ipv6Interface ? { ipv6_interface: plan.ipv6Interface } : {}),
    },
  };
}

async function template(): Promise<string> {
  const { PROJECT_DIR } = await import('../../node/systemd.js');
  const file = path.join(PROJECT_DIR, 'slapos.cfg.example');
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new CliError(`cannot read the configuration template ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/** Writes <dir>/slapos.cfg and <dir>/ssl/{key,certificate,partition_pki}; an existing <dir> is moved aside first. */
export async function writeNodeConfiguration(ctx: CommandContext, plan: RegisterPlan, pair: { certificate: string; key: string }, dryRun: boolean): Promise<string> {
  const { setKeys } = await import('../../config/set-keys.js');
  const text = setKeys(await template(), registerKeys(plan));
  const cfg = path.join(plan.dir, 'slapos.cfg');
  const ssl = path.join(plan.dir, 'ssl');
  if (dryRun) {
    ctx.out(`would write ${cfg}, ${path.join(ssl, 'key')}, ${path.join(ssl, 'certificate')} and ${path.join(ssl, 'partition_pki')}/`);
    return cfg;
  }
  if (existsSync(cfg)) {
    const former = formerName(plan.dir, existsSync);
    renameSync(plan.dir, former);
    ctx.log.info({ from: plan.dir, to: former }, 'former slapos configuration moved aside');
  }
  mkdirSync(plan.dir, { recursive: true, mode: 0o711 });
  mkdirSync(path.join(ssl, 'partition_pki'), { recursive: true, mode: 0o711 });
  for (const [name, content] of [['key', pair.key], ['certificate', pair.certificate]] as const) {
    const file = path.join(ssl, name);
    writeFileSync(file, content, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  writeFileSync(cfg, text.endsWith('\n') ? text : `${text}\n`, { mode: 0o640 });
  return cfg;
}

export function nodeRegisterCommand(): Command {
  const command = new Command('register')
    .summary('register this computer on the master with a token, and write slapos.cfg and its certificate')
    .description('Trades a one-time token (`slapos computer token` on our master, the web interface on a real one) for ' +
      'the computer and its certificate and key (POST <master-url-web>/Person_requestComputer, as the reference), then ' +
      'writes <slapos-configuration>/slapos.cfg (from slapos.cfg.example), ssl/key, ssl/certificate (0600) and ' +
      'ssl/partition_pki/. A former <slapos-configuration> holding a slapos.cfg is moved to <dir>.old (.old.1, …).\n\n' +
      'Exit status: 0 registered, 1 refused or failed (nothing written), 5 not root.')
    .argument('<node_name>', 'chosen title (and, on our master, reference) of the node')
    .option('--interface-name <name>', 'primary network interface; partition addresses are added to it', 'eth0')
    .option('--master-url <url>', "URL of the master's SLAP interface", 'https://slap.vifib.com')
    .option('--master-url-web <url>', 'URL the certificate is asked from (default: --master-url)')
    .option('--partition-number <n>', 'number of partitions to create', '10')
    .option('--ipv4-local-network <cidr>', 'subnetwork of the partitions\' local IPv4 addresses', '10.0.0.0/16')
    .option('--ipv6-interface <name>', 'interface to take IPv6 addresses from')
    .option('--token <token>', 'the computer security token (asked on the terminal when missing)')
    .addOption(new Option('--login-auth', 'login and password authentication (not offered by our master: use --token)'))
    .option('--login <login>', 'master login (not offered by our master: use --token)')
    .option('--password <password>', 'master password (not offered by our master: use --token)')
    .option('-t, --create-tap', 'one tap interface per partition, attached to the (bridge) primary interface')
    .option('-n, --dry-run', 'register, but write nothing (as the reference, the master still registers the node)')
    .option('--slapos-configuration <dir>', 'where to write (the reference: always /etc/opt/slapos)', '/etc/opt/slapos')
    .option('--master-ca-file <file>', "CA certificate to verify the master's TLS certificate (written as master_ca_file)");
  return defineAction(command, async (ctx, args, options) => {
    if (process.getuid?.() !== 0) throw new CliError('this command must be run as root', Exit.NOT_ROOT);
    const name = args[0] ?? '';
    if (options.login !== undefined || options.loginAuth || options.password !== undefined) {
      throw new CliError('login/password registration is not offered by this master: ask a token with `slapos computer token` and give --token');
    }
    const partitionNumber = Number(options.partitionNumber);
    if (!Number.isInteger(partitionNumber) || partitionNumber < 0) throw new CliError(`--partition-number: not a count: ${String(options.partitionNumber)}`);
    const { COMPUTER_NAME } = await import('../../master/computer-token.js');
    if (!COMPUTER_NAME.test(name)) throw new CliError(`node name must match ${COMPUTER_NAME.source}: ${JSON.stringify(name)}`);
    checkUrlOptions(options, { masterUrl: '--master-url', masterUrlWeb: '--master-url-web' });
    checkInterfaceName('--interface-name', String(options.interfaceName));
    checkIpv4Network('--ipv4-local-network', String(options.ipv4LocalNetwork));
    const caFile = options.masterCaFile === undefined ? undefined : path.resolve(String(options.masterCaFile));
    const ca = caFile === undefined ? undefined : readOptionFile('--master-ca-file', caFile);
    let token = typeof options.token === 'string' ? options.token.trim() : '';
    if (!token) {
      if (!process.stdin.isTTY) throw new CliError('give --token (no terminal to ask it on)');
      const { createInterface } = await import('node:readline/promises');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        while (!token) token = (await rl.question('Computer security token: ')).trim();
      } finally {
        rl.close();
      }
    }
    const masterUrl = String(options.masterUrl);
    const web = String(options.masterUrlWeb ?? masterUrl);
    const res = await post(under(web, 'Person_requestComputer'), {
      headers: { 'x-access-token': token, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ title: name }).toString(),
      tls: ca ? { ca } : undefined,
    });
    if (res.status !== 200 && res.text.includes('Certificate still active.')) {
      throw new CliError(`The node name "${name}" is already in use. Please change the name, or revoke the active certificate if you want to replace the node.`);
    }
    if (res.status === 403) throw new CliError(`Access denied to the master (${res.text.trim().slice(0, 200)}). Please check the authentication token or require a new one.`);
    if (res.status !== 200) throw new CliError(`the master refused the registration (HTTP ${res.status}): ${res.text.trim().slice(0, 300)}`);
    let pair: { certificate: string; key: string };
    try {
      pair = JSON.parse(res.text) as { certificate: string; key: string };
      if (typeof pair.certificate !== 'string' || typeof pair.key !== 'string') throw new Error('no certificate and key');
    } catch (error) {
      throw new CliError(`the master's answer is not a certificate and key: ${(error as Error).message}`);
    }
    const computerId = computerIdOf(pair.certificate);
    const cfg = await writeNodeConfiguration(ctx, {
      dir: path.resolve(String(options.slaposConfiguration)), computerId, masterUrl,
      interfaceName: String(options.interfaceName), ipv4LocalNetwork: String(options.ipv4LocalNetwork),
      ipv6Interface: options.ipv6Interface as string | undefined, partitionNumber, createTap: Boolean(options.createTap), masterCaFile: caFile,
    }, pair, Boolean(options.dryRun));
    ctx.out(`Node has successfully been configured as ${computerId} (${cfg}).\nNow please invoke slapos node boot on your site.`);
  });
}
