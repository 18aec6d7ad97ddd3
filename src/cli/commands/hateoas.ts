// `slapos service list|info` and `slapos computer list|info`: read from the
// master's HATEOAS interface ([slapos] master_rest_url, default
// <master_url>/hateoas) and printed as the reference's client prints them
// (recorded: test/fixtures/slap-traffic/README.md, "Step 10").
import { Command } from 'commander';
import type { HateoasClient } from '../../slap/hateoas-client.js';
import { defineAction, type CommandContext } from '../context.js';
import { CliError, Exit } from '../exit.js';
import { clientSettings, pythonJson } from './client.js';
import { computerTokenCommand } from './register.js';

async function withHateoas<T>(ctx: CommandContext, fn: (client: HateoasClient) => Promise<T>): Promise<T> {
  const { restUrl, options } = await clientSettings(ctx.globals.cfg);
  const [{ HateoasClient }, errors] = await Promise.all([import('../../slap/hateoas-client.js'), import('../../slap/errors.js')]);
  const client = new HateoasClient(restUrl, options);
  try {
    return await fn(client);
  } catch (error) {
    if (error instanceof errors.MasterUnreachableError || error instanceof errors.SlapHttpError || error instanceof errors.SlapProtocolError) {
      throw new CliError(`${restUrl}: ${error.message}`);
    }
    throw error;
  } finally {
    await client.close();
  }
}

/** Python's json.dumps(indent=2, sort_keys) of a flat object. */
const sortedJson = (value: Record<string, unknown>) => pythonJson(Object.fromEntries(Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))));

/** xml2dict of an instance XML text; a lone "_" holding JSON is unwrapped (JSON-in-XML serialisation). */
async function parameters(xml: unknown, unwrapJson: boolean): Promise<unknown> {
  if (typeof xml !== 'string' || xml === '') return {};
  const { instanceXmlToDict } = await import('../../slap/instance-xml.js');
  const dict = instanceXmlToDict(xml);
  const keys = Object.keys(dict);
  if (unwrapJson && keys.length === 1 && keys[0] === '_' && typeof dict._ === 'string') {
    try {
      return JSON.parse(dict._) as unknown;
    } catch {
      return dict;
    }
  }
  return dict;
}

const text = (value: unknown) => (typeof value === 'string' ? value : value === null || value === undefined ? '' : String(value));

type Row = Record<string, unknown>;

/**
 * One HATEOAS collection as the reference's client reads it: `list` searches
 * it, `info` finds one member by its key and traverses to its document.
 * `service` and `computer` differ only by these values.
 */
interface Collection {
  /** The collection's search query (hateoas-client.ts). */
  query: 'INSTANCE_TREES' | 'COMPUTE_NODES';
  /** What `info` looks a member up by. */
  key: 'title' | 'reference';
  listSelect: string[];
  printList(rows: Row[], options: Record<string, unknown>): string;
  /** The reference's warning when `info` finds nothing (exit 2): its words (`%s`: the name), the name as a field too. */
  unknown: { field: string; words: string };
  printInfo(doc: Row, options: Record<string, unknown>): Promise<string> | string;
}

function addListInfo(group: Command, collection: Collection, list: Command, info: Command): Command {
  group.addCommand(defineAction(list, async (ctx, _args, options) => {
    const client = await import('../../slap/hateoas-client.js');
    const rows = await withHateoas(ctx, (c) => c.search(client[collection.query], collection.listSelect));
    ctx.out(collection.printList(rows, options));
  }));
  group.addCommand(defineAction(info, async (ctx, args, options) => {
    const name = args[0] ?? '';
    const client = await import('../../slap/hateoas-client.js');
    const doc = await withHateoas(ctx, async (c) => {
      const rows = await c.search(`${client[collection.query]} AND ${client.exactly(collection.key, name)}`, [collection.key, 'relative_url']);
      const row = rows.find((r) => r[collection.key] === name);
      return row === undefined ? undefined : c.traverse(text(row.relative_url));
    });
    if (doc === undefined) {
      const { field, words } = collection.unknown;
      ctx.log.warn({ code: collection.key === 'title' ? 'INSTANCE_UNKNOWN' : 'COMPUTER_UNKNOWN', [field]: name }, words, name);
      return Exit.OFFLINE_OR_PROMISE;
    }
    ctx.out(await collection.printInfo(doc, options));
    return Exit.SUCCESS;
  }));
  return group;
}

export function serviceCommand(): Command {
  const service = new Command('service').summary('list the instances of the master and show one (its HATEOAS interface)');
  const list = new Command('list')
    .summary('the requested instance trees: {"title": "software release URL"} as JSON')
    .description('Reads the instance trees from the master\'s HATEOAS interface ([slapos] master_rest_url of the client ' +
      'configuration, default <master_url>/hateoas) and prints them as a JSON object, title → software release URL; ' +
      '"No existing service." when there is none (as the reference).');
  const info = new Command('info')
    .summary("an instance's software, type, state, parameters and connection parameters, as JSON")
    .argument('<reference>', 'instance title')
    .option('--news', 'include the raw news (the master has none: status stays "unsupported")')
    .description('Prints software-url, software-type, shared, requested-state, instance-parameters, connection-parameters ' +
      'and status as JSON, as the reference. Exit status 2 when no instance has that title.');
  return addListInfo(service, {
    query: 'INSTANCE_TREES',
    key: 'title',
    listSelect: ['title', 'url_string'],
    // The reference's empty case is its own line, not an empty object (slapos/cli/list.py).
    printList: (rows) => rows.length === 0 ? 'No existing service.' : sortedJson(Object.fromEntries(rows.map((row) => [text(row.title), text(row.url_string)]))),
    unknown: { field: 'instance', words: 'Instance %s does not exist.' },
    // Insertion order, as the reference's json.dumps(info, indent=2).
    printInfo: async (doc) => pythonJson({
      'software-url': doc.url_string ?? null,
      'software-type': doc.source_reference ?? null,
      shared: Boolean(doc.root_slave),
      'requested-state': doc.slap_state ?? null,
      'instance-parameters': await parameters(doc.text_content, false),
      'connection-parameters': await parameters(doc.connection_parameter_list, true),
      status: 'unsupported',
    }),
  }, list, info);
}

export function computerCommand(): Command {
  const computer = new Command('computer').summary('list the computers of the master, show one, get a registration token');
  const list = new Command('list')
    .summary('the computers the master knows: "<reference> <title>" per line')
    .description('Reads the computers from the master\'s HATEOAS interface and prints "List of Computers:" then ' +
      '"<reference> <title>" per computer, or "No existing computer." (as the reference).')
    .option('--json', 'print JSON: [{reference, title}]');
  const info = new Command('info')
    .summary("a computer's reference and title")
    .argument('<reference>', 'computer reference')
    .option('--json', 'print JSON')
    .description('Exit status 2 when the master has no computer with that reference (as the reference).');
  addListInfo(computer, {
    query: 'COMPUTE_NODES',
    key: 'reference',
    listSelect: ['title', 'reference'],
    printList: (rows, options) => {
      if (options.json) return JSON.stringify(rows.map((r) => ({ reference: text(r.reference), title: text(r.title) })), null, 2);
      return rows.length === 0 ? 'No existing computer.' : ['List of Computers:', ...rows.map((r) => `${text(r.reference)} ${text(r.title)}`)].join('\n');
    },
    unknown: { field: 'computer_reference', words: 'Computer %s does not exist.' },
    printInfo: (doc, options) => options.json
      ? JSON.stringify({ reference: text(doc.reference), title: text(doc.title) }, null, 2)
      : `Computer Reference: ${text(doc.reference)}\nComputer Title    : ${text(doc.title)}`,
  }, list, info);
  computer.addCommand(computerTokenCommand());
  return computer;
}
