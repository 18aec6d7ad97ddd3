// The files instances produce: etc/report/* scripts run as the partition user
// write partition consumption files into var/xml_report; those files (and
// <instance_root>/var/xml_report/<id>/*, and computer journals in
// <instance_root>/var/xml_report/<computer_id>/*) are validated and copied
// into the usage store's outbox, and only then deleted (slapgrid.md §5.1).
import { killPoint } from '../util/kill-point.js';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { runAs } from '../executor/index.js';
import { partitionCgroup } from '../cgroup/group.js';
import type { User } from '../users/user.js';
import { listBeneath, mkdirBeneath, readTextBeneath, unlinkBeneath } from '../safe-fs/index.js';
import type { Logger } from '../util/log.js';
import type { UsageStore } from './store.js';
import { parseConsumption, partitionFilesJournal, validateJournal, type Movement } from './tioxml.js';

/** A report file larger than this is not read (left in place, logged). */
const MAX_REPORT_BYTES = 8 * 1024 * 1024;
/** Output of a report script kept for the log. */
const SCRIPT_OUTPUT_BYTES = 16 * 1024;

/**
 * Runs every entry of etc/report as `<script> <fresh file in var/xml_report>`
 * through the node's executor (whole tree killed at the timeout); returns the
 * names that failed. etc/report and var/xml_report are reached without
 * following links (safe-fs): a var/xml_report planted as a link is an error
 * for this partition, never a chown of its target.
 */
export async function runReportScripts(
  partition: { id: string; path: string; user: User }, timeoutMs: number, log: Logger, cgroupParent?: string,
): Promise<string[]> {
  let entries;
  try {
    entries = listBeneath(partition.path, 'etc/report');
  } catch (error) {
    log.error({ err: error, code: 'REPORT_DIR_UNREADABLE', partition: partition.id }, 'report scripts not run');
    return ['etc/report'];
  }
  if (!entries) return [];
  const names = entries.filter((e) => e.type === 'file' || e.type === 'symlink').map((e) => e.name).sort();
  if (names.length === 0) return [];
  try {
    // Owner and mode of var/xml_report itself are set by descriptor (it is inside the partition: no link followed).
    mkdirBeneath(partition.path, 'var/xml_report', { mode: 0o750, owner: partition.user, enforce: true });
  } catch (error) {
    log.error({ err: error, code: 'REPORT_DIR_UNSAFE', partition: partition.id }, 'report scripts not run');
    return names;
  }
  const dir = path.join(partition.path, 'etc', 'report');
  const failed: string[] = [];
  // One partition's scripts share one budget of timeoutMs per pass: a partition
  // whose scripts all hang costs report_script_timeout, not that times their number.
  const deadline = Date.now() + timeoutMs;
  for (const name of names) {
    const left = deadline - Date.now();
    if (left <= 0) {
      log.warn({ code: 'REPORT_SCRIPT_TIMEOUT', partition: partition.id, script: `etc/report/${name}`, report_script_timeout: timeoutMs / 1000 }, 'report scripts out of time (report_script_timeout per partition and pass); script left for the next pass');
      failed.push(name);
      continue;
    }
    const file = path.join(partition.path, 'var', 'xml_report', `slapreport.${randomBytes(6).toString('hex')}`);
    const run = await runAs({
      argv: [path.join(dir, name), file], user: partition.user, cwd: dir, timeoutMs: left, env: { PYTHONNOUSERSITE: 'true' }, maxOutput: SCRIPT_OUTPUT_BYTES,
      cgroup: partitionCgroup(partition.id, cgroupParent ?? 'slapos'),
    });
    if (run.exitCode !== 0 || run.timedOut) {
      const why = run.timedOut ? 'timed out: process tree killed' : run.spawnError ?? (run.signal ? `killed by ${run.signal}` : `exit ${run.exitCode}`);
      log.warn({ code: 'REPORT_SCRIPT_FAILED', partition: partition.id, script: `etc/report/${name}`, why, output: run.output.trim().slice(-500) }, 'report script failed');
      failed.push(name);
    }
  }
  return failed;
}

interface ReportFile {
  base: string;
  rel: string;
  /** base/rel, the key of the ingestion record. */
  path: string;
}

/** Regular files of base/rel (not through links); unreadable directories are logged. */
function listFiles(base: string, rel: string, log: Logger): ReportFile[] {
  try {
    return (listBeneath(base, rel) ?? []).filter((e) => e.type === 'file').map((e) => e.name).sort()
      .map((name) => ({ base, rel: path.join(rel, name), path: path.join(base, rel, name) }));
  } catch (error) {
    log.error({ err: error, code: 'REPORT_FILES_UNREADABLE' }, 'report files there not read');
    return [];
  }
}

function readReport(file: ReportFile, log: Logger): string | null {
  try {
    return readTextBeneath(file.base, file.rel, { maxBytes: MAX_REPORT_BYTES }) ?? null;
  } catch (error) {
    log.warn({ err: error, code: 'REPORT_FILE_UNREADABLE' }, 'report file left in place');
    return null;
  }
}

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

export interface IngestResult {
  partitionFiles: number;
  computerFiles: number;
  invalid: string[];
}

/**
 * Copies valid report files into the outbox and deletes them afterwards. A
 * file recorded as ingested (a crash after the commit) is only deleted.
 */
export function ingestReportFiles(
  store: UsageStore, options: { instanceRoot: string; computerId: string; partitions: ReadonlyArray<{ id: string; path: string }>; log: Logger; now: number },
): IngestResult {
  const { log } = options;
  const invalid: string[] = [];
  const perPartition = new Map<string, Movement[]>();
  const unlink = (f: ReportFile) => {
    try { unlinkBeneath(f.base, f.rel); } catch (error) { log.warn({ err: error, code: 'REPORT_FILE_NOT_DELETED', path: f.path }, 'cannot delete a report file already queued'); }
  };
  const taken: Array<{ path: string; sha256: string; file: ReportFile }> = [];
  for (const p of options.partitions) {
    const files = [...listFiles(p.path, 'var/xml_report', log), ...listFiles(options.instanceRoot, path.join('var', 'xml_report', p.id), log)];
    for (const file of files) {
      const text = readReport(file, log);
      if (text === null) continue;
      const digest = sha(text);
      if (store.wasIngested(file.path, digest)) { unlink(file); continue; }
      try {
        const movements = parseConsumption(text);
        perPartition.set(p.id, [...(perPartition.get(p.id) ?? []), ...movements]);
        taken.push({ path: file.path, sha256: digest, file });
      } catch (error) {
        log.info({ err: error, code: 'REPORT_INVALID', path: file.path }, 'not a valid partition consumption report, left in place');
        invalid.push(file.path);
      }
    }
  }
  if (taken.length > 0) {
    store.queueFiles('partition-files', partitionFilesJournal(options.computerId, options.now, perPartition), taken.map(({ path: p, sha256 }) => ({ path: p, sha256 })), options.now);
    killPoint('outbox:files-queued');
    for (const f of taken) unlink(f.file);
    killPoint('outbox:files-removed');
  }
  let computerFiles = 0;
  for (const file of listFiles(options.instanceRoot, path.join('var', 'xml_report', options.computerId), log)) {
    const text = readReport(file, log);
    if (text === null) continue;
    const digest = sha(text);
    if (store.wasIngested(file.path, digest)) { unlink(file); continue; }
    try {
      validateJournal(text);
    } catch (error) {
      log.info({ err: error, code: 'JOURNAL_INVALID', path: file.path }, 'not a valid computer consumption journal, left in place');
      invalid.push(file.path);
      continue;
    }
    store.queueFiles('computer-file', text, [{ path: file.path, sha256: digest }], options.now);
    killPoint('outbox:computer-file-queued');
    unlink(file);
    computerFiles += 1;
  }
  return { partitionFiles: taken.length, computerFiles, invalid };
}
