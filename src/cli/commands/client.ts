// Client commands (the user side of the SLAP API).
import { Command, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { SlapClient, SlapClientOptions } from '../../slap/client.js';
import { MasterUnreachableError, SlapHttpError, SlapNotReadyError } from '../../slap/errors.js';
import type { PyRecord } from '../../slap/pyvalue.js';
import { defineAction, type CommandContext } from '../context.js';
import { CliError, Exit } from '../exit.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** As the reference: --cfg, else $SLAPOS_CLIENT_CONFIGURATION, else ~/.slapos/slapos-client.cfg; [slapos] master_url. */
export async function clientMasterUrl(cfg: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return (await clientSettings(cfg, env)).url;
}

/** master_url plus the TLS client certificate ([slapos] key_file, cert_file, master_ca_file). */
export async function clientSettings(cfg: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<{ url: string; restUrl: string; options: SlapClientOptions }> {
  const [{ tlsFromFiles }, { loadConfig }] = await Promise.all([import('../../slap/client.js'), import('../../config/load.js')]);
  const file = cfg ?? env.SLAPOS_CLIENT_CONFIGURATION ?? path.join(homedir(), '.slapos', 'slapos-client.cfg');
  const slapos = loadConfig(file, 'SLAPOS_CLIENT_CONFIGURATION').slapos;
  if (!slapos.master_url) throw new CliError(`${file}: [slapos] master_url is not set`);
  try {
    const tls = tlsFromFiles(slapos);
    // master_rest_url as the reference's client; without it, our master's /hateoas.
    const restUrl = slapos.master_rest_url ?? new URL('hateoas', slapos.master_url.endsWith('/') ? slapos.master_url : `${slapos.master_url}/`).href;
    return { url: slapos.master_url, restUrl, options: tls ? { tls } : {} };
  } catch (error) {
    throw new CliError(`${file}: ${(error as Error).message}`);
  }
}

function pairs(list: string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const at = item.indexOf('=');
    if (at <= 0) throw new CliError(`${what} must be key=value, not "${item}"`);
    out[item.slice(0, at)] = item.slice(at + 1);
  }
  return out;
}

/** Python json.dumps(indent=2) (ensure_ascii), as the reference wraps --parameters-file in "_". */
export const pythonJson = (value: unknown) =>
  JSON.stringify(value, null, 2).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** --force-serialisation xml: one parameter per key of a JSON object, non-strings as JSON text. */
function flatParameters(value: unknown): PyRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('with --force-serialisation xml the file must hold a JSON object');
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
}

/** After empty connection parameters: why they are empty (not a failure). */
function noConnectionYet(connection: unknown): string {
  const empty = connection === null || connection === undefined || (typeof connection === 'object' && Object.keys(connection).length === 0);
  return empty ? '\n(none yet: an instance publishes them once a node has deployed it, usually within a few minutes)' : '';
}

/** Connection parameters for display: a lone "_" holds JSON. */
function unwrap(params: PyRecord): unknown {
  const keys = Object.keys(params);
  if (keys.length === 1 && keys[0] === '_' && typeof params._ === 'string') {
    try {
      return JSON.parse(params._) as unknown;
    } catch {
      return params;
    }
  }
  return params;
}

async function withClient<T>(ctx: CommandContext, fn: (client: SlapClient) => Promise<T>): Promise<T> {
  const { url, options } = await clientSettings(ctx.globals.cfg);
  // The HTTP stack (undici) is loaded by the commands that talk to the master only.
  const { SlapClient } = await import('../../slap/client.js');
  const client = new SlapClient(url, options);
  try {
    return await fn(client);
  } catch (error) {
    if (error instanceof SlapNotReadyError) throw error;
    if (error instanceof MasterUnreachableError || error instanceof SlapHttpError) throw new CliError(error.message);
    throw error;
  } finally {
    await client.close();
  }
}

const show = (ctx: CommandContext, json: unknown, asJson: boolean, text: string) =>
  ctx.out(asJson ? JSON.stringify(json, null, 2) : text);

/** The JSON API's INSTANCE (slapos.get.v0.instance_tree). */
interface InstanceTree {
  title: string; instance_guid: string; software_release_uri: string; software_type: string; state: string;
  parameters: PyRecord; connection_parameters: PyRecord; root_instance_title: string;
  computer_guid: string; compute_partition_id: string;
}

const instanceTree = (c: SlapClient, title: string) => c.jsonRpc('slapos.get.v0.instance_tree', { title }) as Promise<InstanceTree>;

/** Root instances through the JSON API (instance_tree_list, then each tree). */
async function listInstances(ctx: CommandContext): Promise<InstanceTree[]> {
  return withClient(ctx, async (c) => {
    const { result_list: titles } = (await c.jsonRpc('slapos.allDocs.v0.instance_tree_list')) as { result_list: Array<{ title: string }> };
    const out: InstanceTree[] = [];
    for (const { title } of titles) out.push(await instanceTree(c, title));
    return out;
  });
}

const PRODUCT_PREFIX = 'product.';

/** `product.<name>` → the product's first release, as the reference's client (other URLs unchanged). */
async function resolveProduct(ctx: Parameters<typeof withClient>[0], url: string): Promise<string> {
  if (!url.startsWith(PRODUCT_PREFIX)) return url;
  const name = url.slice(PRODUCT_PREFIX.length);
  const list = await withClient(ctx, (c) => c.getSoftwareReleaseListFromSoftwareProduct(name));
  if (list.length === 0) throw new CliError('No Software Release corresponding to this Software Product has been found. Exiting now.');
  return list[0] as string;
}

export function clientCommands(): Command[] {
  const supply = new Command('supply')
    .summary('ask a node to install a software release')
    .argument('<url>', 'software release URL')
    .argument('<node>', 'computer id')
    .option('--json', 'print JSON');
  const remove = new Command('remove')
    .summary('ask a node to remove a software release')
    .argument('<url>', 'software release URL')
    .argument('<node>', 'computer id')
    .option('--json', 'print JSON');
  const request = new Command('request')
    .summary('request an instance; prints its state and connection parameters (exit 2 while not ready)')
    .description(
      'Asks the master for an instance of <url> named <title>, or changes it (parameters, state): the same title ' +
        'is the same instance. The master allocates a partition on a node that has the software release; the node ' +
        'deploys it at its next instance pass and publishes connection parameters. Run the command again to see ' +
        'them: it prints the state and connection parameters once ready.\n\n' +
        'Examples:\n  slapos request my-shop https://lab.example/shop.cfg --parameters admin=me\n' +
        '  slapos request my-shop https://lab.example/shop.cfg --state stopped\n\n' +
        'Exit status: 0 ready, 2 not ready yet (try again later), 1 error.',
    )
    .argument('<title>', 'instance title (reference)')
    .argument('<url>', 'software release URL')
    .option('--type <software-type>', 'software type')
    .option('--state <state>', 'started, stopped or destroyed', 'started')
    .option('--slave', 'request a shared instance')
    .option('--node <k=v>', 'filter on the node (repeatable), e.g. computer_guid=COMP-1', collect)
    .option('--parameters <k=v>', 'instance parameter (repeatable)', collect)
    .option('--parameters-file <file>', 'instance parameters from a JSON file')
    .addOption(new Option('--force-serialisation <kind>', 'how --parameters-file is sent: json-in-xml (one "_" parameter holding JSON, the default here) or xml (one parameter per key)')
      .choices(['xml', 'json-in-xml']))
    .option('--json', 'print JSON');
  const list = new Command('list').summary('list requested instances').option('--json', 'print JSON');
  const info = new Command('info')
    .summary("show an instance's state, parameters and connection parameters")
    .argument('<title>', 'instance title')
    .option('--json', 'print JSON');

  const supplyAction = (state: 'available' | 'destroyed') => defineAction(state === 'available' ? supply : remove, async (ctx, args, options) => {
    const [given = '', node = ''] = args;
    const url = await resolveProduct(ctx, given);
    const answer = await withClient(ctx, (c) => c.supplySupply(url, node, state));
    show(ctx, { url, computer_id: node, state, answer }, Boolean(options.json), answer);
    ctx.hint(state === 'available'
      ? `the node ${node} installs it at its next software pass (slapos node software); then slapos request <title> ${url}`
      : `the node ${node} removes it at its next software pass (slapos node software)`, Boolean(options.json));
  });

  return [
    supplyAction('available'),
    supplyAction('destroyed'),
    defineAction(request, async (ctx, args, options) => {
      const [title = '', given = ''] = args;
      const state = String(options.state);
      if (!['started', 'stopped', 'destroyed'].includes(state)) throw new CliError(`--state must be started, stopped or destroyed`);
      if (options.parameters && options.parametersFile) throw new CliError('give --parameters or --parameters-file, not both');
      let parameters: PyRecord = pairs(options.parameters as string[] | undefined, '--parameters');
      if (options.parametersFile) {
        const file = String(options.parametersFile);
        try {
          const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
          parameters = options.forceSerialisation === 'xml' ? flatParameters(parsed) : { _: pythonJson(parsed) };
        } catch (error) {
          throw new CliError(`cannot read parameters from ${file}: ${(error as Error).message}`);
        }
      }
      const filter = pairs(options.node as string[] | undefined, '--node');
      const url = await resolveProduct(ctx, given);
      if (!options.json) ctx.out(`Requesting ${title} with state ${state}...`);
      try {
        const inst = await withClient(ctx, (c) => c.requestComputerPartition(url, title, {
          softwareType: (options.type as string | undefined) ?? 'default',
          parameters, filter, state: state as 'started', shared: Boolean(options.slave),
        }));
        const connection = unwrap(inst.connectionParameters);
        show(ctx, { title, state: inst.requestedState ?? state, computer_id: inst.computerId, partition_id: inst.partitionId, connection_parameters: connection },
          Boolean(options.json),
          `Instance requested.\nState is : ${inst.requestedState ?? state}\nConnection parameters of instance are:\n${JSON.stringify(connection, null, 2)}` +
            `${noConnectionYet(connection)}\nYou can rerun the command to get up-to-date information.`);
        return Exit.SUCCESS;
      } catch (error) {
        if (error instanceof SlapNotReadyError) {
          show(ctx, { title, ready: false }, Boolean(options.json), 'Instance requested. It is not ready yet: rerun the command later.');
          return Exit.OFFLINE_OR_PROMISE;
        }
        if (error instanceof CliError && /HTTP 404/.test(error.message)) throw new CliError(`${title}: nothing can be allocated (${error.message})`);
        throw error;
      }
    }),
    defineAction(list, async (ctx, _args, options) => {
      const rows = await listInstances(ctx);
      show(ctx, Object.fromEntries(rows.map((r) => [r.title, r.software_release_uri])), Boolean(options.json),
        rows.length === 0 ? 'No instance.' : rows.map((r) => `${r.title} ${r.software_release_uri}`).join('\n'));
    }),
    defineAction(info, async (ctx, args, options) => {
      const title = args[0] ?? '';
      let row: InstanceTree;
      try {
        row = await withClient(ctx, (c) => instanceTree(c, title));
      } catch (error) {
        if (error instanceof CliError && /HTTP 404/.test(error.message)) throw new CliError(`no instance titled ${title}`);
        throw error;
      }
      const out = { ...row, connection_parameters: unwrap(row.connection_parameters) };
      show(ctx, out, Boolean(options.json), [
        `Software Release URL: ${row.software_release_uri}`, `Software Type: ${row.software_type}`,
        `State: ${row.state}`, `Node: ${row.computer_guid} ${row.compute_partition_id}`,
        `Instance parameters:\n${JSON.stringify(row.parameters, null, 2)}`,
        `Connection parameters:\n${JSON.stringify(out.connection_parameters, null, 2)}${noConnectionYet(out.connection_parameters)}`,
      ].join('\n'));
    }),
  ];
}
