// `slapos node format`: observe → plan → apply → report.
import { setTimeout as sleep } from 'node:timers/promises';
import { Exit } from '../util/exit-status.js';
import type { SlaposConfig } from '../config/load.js';
import { Rtnl } from '../network/netlink.js';
import { SYSTEM_USER_DB, type UserDbLocation } from '../users/apply.js';
import type { Logger } from '../util/log.js';
import { observe } from './observe.js';
import type { Dict } from './computer-xml.js';
import { FormatError, recordlessPartitions, UserDbChangedError } from './plan-network.js';
import { makePlan, wantedUsers } from './plan.js';
import { checkUserDb } from './user-check.js';
import { reportNeeded, sentDigest, sha256, writeReportRecord } from './report-record.js';
import { resolveSettings, type FormatOptions } from './settings.js';
import { describe, printable } from './steps.js';

export interface RunFormatOptions extends FormatOptions {
  /** Where the user database lives; only tests change it. */
  userDb?: UserDbLocation;
  /** `-i`: a definition file's text (definition-file.ts): the partitions' addresses and ranges, as stored values. */
  definition?: { file: string; text: string };
  /** `-o`: receives the definition file of the formatted computer (not on a dry run nor a failure). */
  writeDefinition?: (text: string) => void;
}

/**
 * Plans of one run after the user database changed under it (see runFormat),
 * with a randomised exponential backoff between them (0.2 s, 0.4 s, … up to
 * 3.2 s: about 6 s in all), so that a burst of useradd by other tools passes.
 */
const USER_DB_ATTEMPTS = 6;
export const userDbBackoffMs = (attempt: number, random = Math.random): number => Math.round(100 * 2 ** attempt * (0.5 + random()));

export async function runFormat(config: SlaposConfig, options: RunFormatOptions, log: Logger, out: (text: string) => void): Promise<number> {
  const settings = resolveSettings(config, options, (m) => log.warn(m));
  if (!options.now && !settings.dryRun && settings.randomDelay > 0) {
    const delay = Math.floor(Math.random() * settings.randomDelay * 1000);
    log.info({ delay_s: Math.round(delay / 1000) }, 'waiting before formatting (random_delay; use --now to skip)');
    await sleep(delay);
  }
  // A definition file is checked whole before anything is observed or changed.
  let definition: Dict | undefined;
  if (options.definition) {
    const { definitionAsStored, definitionProblems, parseDefinition, DefinitionError } = await import('./definition-file.js');
    const parsed = parseDefinition(options.definition.text, options.definition.file, settings.partitionAmount);
    const problems = definitionProblems(parsed, settings);
    if (problems.length > 0) throw new DefinitionError(options.definition.file, `not this node's layout: ${problems.join('; ')}`);
    definition = definitionAsStored(parsed);
  }
  const userDb = options.userDb ?? SYSTEM_USER_DB;
  const today = Math.floor(Date.now() / 86_400_000);
  const rtnl = settings.alterNetwork ? new Rtnl() : undefined;
  try {
    // Users are observed without the user database lock (a no-op run takes
    // no lock); if another tool (useradd…) took a planned id meanwhile, the
    // users step refuses, and the whole run is planned again: every step is
    // idempotent and none used the stale ids yet.
    for (let attempt = 1; ; attempt++) {
      try {
        return await formatOnce();
      } catch (error) {
        // A FormatError (or any other) reaches the CLI, which prints its message (status 1).
        if (!(error instanceof UserDbChangedError) || attempt >= USER_DB_ATTEMPTS) throw error;
        const wait = userDbBackoffMs(attempt);
        log.warn({ err: error, code: 'USER_DB_BUSY', retry_ms: wait, attempt: attempt + 1, attempts: USER_DB_ATTEMPTS }, 'user database changed while planning; planning again');
        await sleep(wait);
      }
    }
  } finally {
    rtnl?.close();
  }

  async function formatOnce(): Promise<number> {
    const started = Date.now();
    const observed = await observe(settings, rtnl, userDb);
    if (definition) useDefinition(observed, definition);
    const recordless = settings.alterNetwork ? recordlessPartitions(settings, observed) : [];
    if (recordless.length > 0) observed.masterRecords = await masterRecords(config, settings.computerId, recordless, log);
    const observedAt = Date.now();
    const plan = makePlan(settings, observed, today);
    for (const warning of plan.warnings) log.warn(warning);
    const userCheck = settings.alterUser ? checkUserDb(observed.users, wantedUsers(settings), observed.stored !== undefined) : { missing: [], mismatched: [] };
    const userDbNotes = [
      ...observed.userDbRepairs.map((r) => `user database: ${r}`),
      ...userCheck.missing.map((m) => `user database: ${m}${settings.dryRun ? ' (this run would add it)' : ' (added by this run)'}`),
    ];
    for (const note of userDbNotes) log.warn(note);
    for (const m of userCheck.mismatched) log.warn({ code: 'USER_ID_MISMATCH', mismatch: m }, 'user database: format does not change the ids of existing users and groups (files belong to them): fix by hand if unintended');
    // Partitions with data were refused by the plan; the master is asked about the empty ones.
    if (observed.surplus.length > 0) await checkShrink(observed.surplus.map((i) => `${settings.partitionBaseName}${i}`));
    if (settings.dryRun) {
      if (options.json) {
        out(JSON.stringify({ mode: plan.mode ?? null, removed: plan.removed, warnings: plan.warnings, userDatabase: { repairs: observed.userDbRepairs, ...userCheck }, steps: plan.steps.map(printable), computer: plan.computer }, null, 2));
      } else {
        const lines = [...observed.userDbRepairs, ...plan.steps.map(describe)];
        out(lines.length === 0 ? 'nothing to do: the node is formatted' : lines.join('\n'));
      }
      return Exit.SUCCESS;
    }
    const plannedAt = Date.now();
    // An empty plan (a re-run on a formatted node) does not even load the apply code.
    const { applyPlan } = plan.steps.length > 0 ? await import('./apply.js') : { applyPlan: async (): Promise<Record<string, number>> => ({}) };
    const timing = await applyPlan(plan, { settings, observed, ...(rtnl ? { rtnl } : {}), userDb, log, today });
    if (options.writeDefinition) options.writeDefinition((await import('./definition-file.js')).definitionText(plan.computer));
    const rounded = Object.fromEntries(Object.entries(timing).map(([k, v]) => [k, Math.round(v)]));
    log.debug({ observe: observedAt - started, plan: plannedAt - observedAt, apply: rounded }, 'time spent (ms)');
    const summary = { steps: plan.steps.length, partitions: settings.partitionAmount, removed: plan.removed, repaired: [...observed.userDbRepairs, ...userCheck.missing], ms: Date.now() - started };
    log.info(summary, plan.steps.length === 0 ? 'node already formatted, nothing changed' : 'node formatted');
    // Block devices and routable IPv4 of the operator's pools (docs/managers.md), reported with the partitions.
    const { formatPools } = await import('./pools-hook.js');
    const pooledXml = await formatPools(config, settings, plan, log);
    // Not sent again when the master accepted exactly this less than a day ago (report-record.ts).
    // The digests of the state files read, when they are still the planned texts (no need to hash 1-2 MB again).
    const digestOf = (planned: string, file: string | undefined, read: string | null | undefined) =>
      read != null && file !== undefined && observed.files.get(file) === planned ? read : sha256(planned);
    const stateXmlSha256 = digestOf(plan.stateXml, settings.computerXml, observed.stateDigests?.xml);
    const report = {
      master_url: config.slapos.master_url ?? '',
      computer_id: settings.computerId,
      sent_sha256: sentDigest(pooledXml !== undefined ? { xml: pooledXml } : { stateXmlSha256 }),
      state_xml_sha256: stateXmlSha256,
      state_json_sha256: plan.stateJson !== undefined ? digestOf(plan.stateJson, settings.computerJson, observed.stateDigests?.json) : null,
    };
    if (!reportNeeded(observed.reportRecord, report, Date.now())) {
      log.info({ reported_at: observed.reportRecord?.at }, 'the master already has this computer, as reported last; not reported again');
      if (options.json) out(JSON.stringify({ ...summary, reported: true, unchanged: true }));
      return Exit.SUCCESS;
    }
    try {
      await reportComputer(config, pooledXml ?? plan.computerXml);
    } catch (error) {
      log.error({ err: error, code: 'MASTER_REPORT_FAILED' }, 'the node is formatted and its state saved, but reporting to the master failed');
      if (options.json) out(JSON.stringify({ ...summary, reported: false }));
      return Exit.OFFLINE_OR_PROMISE;
    }
    try {
      writeReportRecord(settings.computerXml, { ...report, at: new Date().toISOString() });
    } catch (error) {
      log.warn({ err: error, code: 'REPORT_RECORD_FAILED' }, 'reported, but could not record it: the next run reports again');
    }
    if (options.json) out(JSON.stringify({ ...summary, reported: true, unchanged: false }));
    return Exit.SUCCESS;
  }

  /** Refuses (before any change) to remove partitions the master lists as busy. */
  async function checkShrink(surplus: string[]): Promise<void> {
    const [{ slapClientFromConfig }, { askMaster, shrinkRefusal }] = await Promise.all([import('../slap/connect.js'), import('./shrink.js')]);
    const client = slapClientFromConfig(config);
    let master;
    try {
      master = await askMaster(() => client.getFullComputerInformation(settings.computerId));
    } finally {
      await client.close();
    }
    const refusal = shrinkRefusal(surplus, settings.partitionAmount, master, options.allowOfflineShrink === true);
    if (refusal) throw new FormatError(refusal);
    if ('error' in master) log.warn({ code: 'MASTER_UNREACHABLE', partitions: surplus, master_error: master.error }, 'removing partitions without asking the master (--allow-offline-shrink)');
  }
}

/** The definition's addresses and ranges in place of the state file's (the rest of each stored partition kept). */
function useDefinition(observed: Awaited<ReturnType<typeof observe>>, definition: Dict): void {
  const stored = observed.stored ?? {};
  const before = new Map((Array.isArray(stored.partition_list) ? (stored.partition_list as Dict[]) : []).map((p) => [String(p.reference), p]));
  const given = definition.partition_list as Dict[];
  observed.stored = {
    ...stored, ...definition,
    partition_list: given.map((p) => {
      const kept = before.get(String(p.reference)) ?? {};
      return { ...kept, ...p, tap: { ...((kept.tap ?? {}) as Dict), ...(p.tap as Dict) }, user: { ...((kept.user ?? {}) as Dict), ...(p.user as Dict) } };
    }),
  };
  delete observed.storedMarshalled;
  delete observed.storedJson;
  observed.storedFromDefinition = true;
}

/**
 * What the master knows of partitions that lost every local record: the
 * addresses in the ip_list of those it allocated (getFullComputerInformation,
 * read-only, also in a dry run). A master that cannot be asked is no error:
 * those addresses are derived again, and the log says so.
 */
async function masterRecords(config: SlaposConfig, computerId: string, references: string[], log: Logger): Promise<Map<string, Dict>> {
  const out = new Map<string, Dict>();
  const [{ slapClientFromConfig }, { masterEntry }, { PyTuple }] = await Promise.all([
    import('../slap/connect.js'), import('./adopt.js'), import('../slap/pyvalue.js'),
  ]);
  let client;
  try {
    client = slapClientFromConfig(config);
    const computer = await client.getFullComputerInformation(computerId);
    for (const partition of computer.partitions) {
      if (!references.includes(partition.partitionId)) continue;
      const raw = partition.parameters?.ip_list;
      const ipList = (Array.isArray(raw) ? raw : []).flatMap((e) => {
        const items = e instanceof PyTuple ? e.items : Array.isArray(e) ? e : [];
        return typeof items[0] === 'string' && typeof items[1] === 'string' ? [[items[0], items[1]] as const] : [];
      });
      const entry = masterEntry(partition.partitionId, ipList);
      if (entry) out.set(partition.partitionId, entry);
    }
  } catch (error) {
    log.warn({ err: error, code: 'MASTER_UNREACHABLE', partitions: references }, 'no local record of their addresses, and the master could not be asked; deriving them again');
  } finally {
    await client?.close();
  }
  return out;
}

/**
 * POST loadComputerConfigurationFromXML through the shared SLAP client (§7),
 * which also reads key_file, cert_file and master_ca_file. Loaded here only:
 * the HTTP stack is not needed before the node is formatted.
 */
async function reportComputer(config: SlaposConfig, computerXml: string): Promise<void> {
  const [{ slapClientFromConfig }, { MasterUnreachableError, SlapHttpError }] = await Promise.all([
    import('../slap/connect.js'),
    import('../slap/errors.js'),
  ]);
  const client = slapClientFromConfig(config);
  const origin = new URL(client.masterUrl).origin;
  try {
    // loadComputerConfigurationFromXML(computer), with the XML the plan already marshalled.
    await client.call('POST', 'loadComputerConfigurationFromXML', { xml: computerXml });
  } catch (error) {
    if (error instanceof MasterUnreachableError) {
      const cause = error.cause instanceof Error ? error.cause.message : String(error.cause);
      throw new Error(`cannot reach the master at ${origin}: ${cause}`);
    }
    if (error instanceof SlapHttpError) {
      const hint = error.status === 404 ? ' (is computer_id right, and are key_file/cert_file the ones the master issued for it?)' : '';
      throw new Error(`master ${origin} answered ${error.status} to loadComputerConfigurationFromXML${hint}`);
    }
    throw error;
  } finally {
    await client.close();
  }
}
