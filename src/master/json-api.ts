// JSON-RPC v0 methods (slap-protocol.md §4), those the status page, the panel
// and the CLI need: POST /<method>, JSON body validated in and out (zod,
// strict objects), errors as {status, type, title}. Non-POST → 405, an Accept
// header refusing JSON → 406, input invalid → 400, output invalid → 500.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { z } from '../vendor/zod.js';
import { MarshalError, XmlInputError } from '../slap/errors.js';
import { instanceXmlToDict } from '../slap/instance-xml.js';
import type { PyRecord } from '../slap/pyvalue.js';
import { readSoftwareInstance } from '../slap/shapes.js';
import type { Rule } from './access.js';
import type { Authorize } from './authorize.js';
import * as inst from './instance-ops.js';
import * as node from './node-ops.js';
import type { NetworkRow, PartitionRow, Store } from './store.js';
import { checkId, checkTitle, checkUrl, MasterError, notFound } from './validate.js';

const STATE = z.enum(['started', 'stopped', 'destroyed']);
const INSTANCE = z.strictObject({
  title: z.string(), instance_guid: z.string(), software_release_uri: z.string(), software_type: z.string(),
  state: STATE, connection_parameters: z.record(z.string(), z.unknown()), parameters: z.record(z.string(), z.unknown()),
  shared: z.boolean(), root_instance_title: z.string(), ip_list: z.array(z.array(z.string())), full_ip_list: z.array(z.array(z.string())),
  sla_parameters: z.record(z.string(), z.unknown()), computer_guid: z.string(), compute_partition_id: z.string(),
  processing_timestamp: z.number().int(), access_status_message: z.string(),
});
const ACK = z.strictObject({ type: z.literal('success'), title: z.string() });
const list = <T extends z.ZodType>(item: T) => z.strictObject({ result_list: z.array(item) });
const title = z.string().min(1).max(200);
const computerGuid = z.string().min(1).max(128);

type Instance = z.infer<typeof INSTANCE>;

/** The proxy's synthetic guid: title, scope and shared flag. */
export const jsonGuid = (title: string, requestedBy: string, shared: boolean) => `${title}___${requestedBy}___${shared ? 1 : 0}`;

const asState = (s: string) => (STATE.safeParse(s).success ? (s as Instance['state']) : 'started');

export function instanceJson(p: PartitionRow, network: NetworkRow[]): Instance {
  return {
    title: p.partition_reference ?? '', instance_guid: jsonGuid(p.partition_reference ?? '', p.requested_by, false),
    software_release_uri: p.software_release ?? '', software_type: p.software_type ?? '', state: asState(p.requested_state),
    connection_parameters: instanceXmlToDict(p.connection_xml), parameters: instanceXmlToDict(p.xml), shared: false,
    root_instance_title: p.requested_by || (p.partition_reference ?? ''), ip_list: network.map((n) => [n.reference, n.address]),
    full_ip_list: [], sla_parameters: {}, computer_guid: p.computer_reference, compute_partition_id: p.reference,
    processing_timestamp: Math.floor(p.timestamp ?? 0), access_status_message: '',
  };
}

/** JSON parameters to SLAP parameters: a flat string map as is, anything else serialised under "_" (as slapos request does). */
export function toSlapParameters(parameters: Record<string, unknown>): PyRecord {
  const values = Object.values(parameters);
  if (values.every((v) => typeof v === 'string')) return parameters as PyRecord;
  return { _: JSON.stringify(parameters) };
}

interface Method<I extends z.ZodType, O extends z.ZodType> {
  input: I;
  output: O;
  rule: (input: z.infer<I>) => Rule;
  run: (input: z.infer<I>) => Promise<z.infer<O>>;
}

const method = <I extends z.ZodType, O extends z.ZodType>(m: Method<I, O>) => m as unknown as Method<z.ZodType, z.ZodType>;

const issues = (error: z.ZodError) => error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');

export function registerJsonApi(app: FastifyInstance, store: Store, settings: node.MasterSettings, authorize: Authorize): void {
  const user = (): Rule => ({ kind: 'user' });
  const requireComputer = async (computer: string) => {
    const found = await store.read((tx) => tx.getComputer(checkId('computer_guid', computer)));
    if (!found) throw notFound(`unknown computer ${computer}`);
  };

  const methods: Record<string, Method<z.ZodType, z.ZodType>> = {
    'slapos.allDocs.v0.instance_tree_list': method({
      input: z.strictObject({}), output: list(z.strictObject({ title: z.string() })), rule: user,
      run: async () => ({
        result_list: (await store.read((tx) => tx.listBusyPartitions()))
          .filter((p) => p.requested_by === '' && p.partition_reference)
          .map((p) => ({ title: p.partition_reference ?? '' })),
      }),
    }),
    'slapos.get.v0.instance_tree': method({
      input: z.strictObject({ title }), output: INSTANCE, rule: user,
      run: ({ title: t }) => store.read(async (tx) => {
        const row = await tx.findInstance(t, '');
        if (!row) throw notFound(`no instance tree ${t}`);
        return instanceJson(row, await tx.listNetwork(row.computer_reference, row.reference));
      }),
    }),
    'slapos.post.v0.software_instance': method({
      input: z.strictObject({
        title, software_release_uri: z.string().min(1), software_type: z.string().max(200),
        parameters: z.record(z.string(), z.unknown()).optional(), state: STATE.optional(),
        sla_parameters: z.record(z.string(), z.union([z.string(), z.number()])).optional(), shared: z.boolean().optional(),
      }),
      output: INSTANCE, rule: user,
      run: async (input) => {
        const request: inst.InstanceRequest = {
          softwareRelease: checkUrl(input.software_release_uri), softwareType: input.software_type,
          title: checkTitle('title', input.title), parameters: toSlapParameters(input.parameters ?? {}),
          filter: Object.fromEntries(Object.entries(input.sla_parameters ?? {}).map(([k, v]) => [k, String(v)])),
          state: input.state ?? 'started', shared: input.shared ?? false,
        };
        return store.transaction(async (tx) => {
          const reply = readSoftwareInstance(await inst.requestInstance(tx, settings, request));
          if (!request.shared) {
            const row = await tx.findInstance(request.title, '');
            if (!row) throw new MasterError(404, `instance ${request.title} vanished`);
            return instanceJson(row, await tx.listNetwork(row.computer_reference, row.reference));
          }
          return {
            title: request.title, instance_guid: jsonGuid(request.title, '', true), software_release_uri: request.softwareRelease,
            software_type: request.softwareType, state: 'started' as const, connection_parameters: reply.connectionParameters,
            parameters: reply.parameters, shared: true, root_instance_title: request.title, ip_list: reply.ipList, full_ip_list: [],
            sla_parameters: {}, computer_guid: reply.computerId ?? '', compute_partition_id: reply.partitionId ?? '',
            processing_timestamp: 0, access_status_message: '',
          };
        });
      },
    }),
    'slapos.allDocs.WIP.compute_node_list': method({
      input: z.strictObject({}), output: list(z.strictObject({ computer_guid: z.string() })), rule: user,
      run: async () => ({ result_list: (await store.read((tx) => tx.listComputers())).map((c) => ({ computer_guid: c.reference })) }),
    }),
    'slapos.allDocs.v0.compute_node_software_installation_list': method({
      input: z.strictObject({ computer_guid: computerGuid }),
      output: list(z.strictObject({ software_release_uri: z.string(), state: z.enum(['available', 'destroyed']) })),
      rule: (i) => ({ kind: 'computer-or-user', computer: i.computer_guid }),
      run: async ({ computer_guid: c }) => {
        await requireComputer(c);
        const rows = await store.read((tx) => tx.listSoftware(c));
        return { result_list: rows.map((s) => ({ software_release_uri: s.url, state: s.requested_state === 'destroyed' ? 'destroyed' as const : 'available' as const })) };
      },
    }),
    'slapos.allDocs.v0.compute_node_instance_list': method({
      input: z.strictObject({ computer_guid: computerGuid }),
      output: list(z.strictObject({
        instance_guid: z.string(), title: z.string(), state: STATE, compute_partition_id: z.string(), software_release_uri: z.string(),
      })),
      rule: (i) => ({ kind: 'computer-or-user', computer: i.computer_guid }),
      run: async ({ computer_guid: c }) => {
        await requireComputer(c);
        const rows = (await store.read((tx) => tx.listPartitions(c))).filter((p) => p.slap_state === 'busy');
        return {
          result_list: rows.map((p) => ({
            instance_guid: jsonGuid(p.partition_reference ?? '', p.requested_by, false), title: p.partition_reference ?? '',
            state: asState(p.requested_state), compute_partition_id: p.reference, software_release_uri: p.software_release ?? '',
          })),
        };
      },
    }),
    'slapos.post.v0.software_installation': method({
      input: z.strictObject({ software_release_uri: z.string().min(1), computer_guid: computerGuid, state: z.enum(['available', 'destroyed']).optional() }),
      output: ACK, rule: user,
      run: async (i) => {
        const url = checkUrl(i.software_release_uri);
        const computer = checkId('computer_guid', i.computer_guid);
        const title = await store.transaction((tx) => node.supply(tx, settings, url, computer, i.state ?? 'available'));
        return { type: 'success' as const, title };
      },
    }),
  };

  const sendError = (reply: FastifyReply, status: number, title: string) =>
    reply.code(status).type('application/json').send(JSON.stringify({ status, type: STATUS_CODES[status] ?? 'Error', title }));

  app.register(async (scope) => {
    scope.setErrorHandler((error, request, reply) => {
      if (error instanceof MasterError) return sendError(reply, error.status, error.message);
      // Values SLAP cannot carry (control characters in parameters): the caller's input, not our fault.
      if (error instanceof MarshalError || error instanceof XmlInputError) return sendError(reply, 400, error.message);
      const status = (error as { statusCode?: number }).statusCode;
      if (status && status >= 400 && status < 500) return sendError(reply, status, (error as Error).message);
      request.log.error({ err: error }, 'internal error in JSON API');
      return sendError(reply, 500, 'Internal server error');
    });
    for (const [name, m] of Object.entries(methods)) {
      scope.route({
        method: ['GET', 'PUT', 'DELETE', 'PATCH'], url: `/${name}`,
        handler: (_request, reply) => sendError(reply.header('allow', 'POST'), 405, `${name} accepts POST only`),
      });
      scope.post(`/${name}`, async (request: FastifyRequest, reply: FastifyReply) => {
        const accept = request.headers.accept;
        if (accept && !/(^|[\s,])(\*\/\*|application\/\*|application\/json)/.test(accept)) {
          return sendError(reply, 406, 'this method answers application/json only');
        }
        const input = m.input.safeParse(request.body ?? {});
        if (!input.success) return sendError(reply, 400, `invalid input: ${issues(input.error)}`);
        await authorize(request, m.rule(input.data));
        const output = m.output.safeParse(await m.run(input.data));
        if (!output.success) {
          request.log.error({ method: name, issues: output.error.issues }, 'JSON API output failed its schema');
          return sendError(reply, 500, 'Internal server error');
        }
        return reply.type('application/json').send(JSON.stringify(output.data));
      });
    }
  });
}
