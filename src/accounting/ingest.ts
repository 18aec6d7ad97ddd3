// The files instances produce: etc/report/* scripts run as the partition user
// write partition consumption files into var/xml_report; those files (and
// <instance_root>/var/xml_report/<id>/*, and computer journals in
// <instance_root>/var/xml_report/<computer_id>/*) are validated and copied
// into the usage store's outbox, and only then deleted (slapgrid.md §5.1).
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, chownSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../util/log.js';
import { runAsPartitionUser, type PartitionUser } from './run-as.js';
import type { UsageStore } from './store.js';
import { parseConsumption, partitionFilesJournal, validateJournal, type Movement } from './tioxml.js';

/** A report file larger than this is not read (left in place, logged). */
const MAX_REPORT_BYTES = 8 * 1024 * 1024;

/** Runs every entry of etc/report as `<script> <fresh file in var/xml_report>`; returns the names that failed. */
export async function runReportScripts(partition: { id: string; path: string; user: PartitionUser }, timeoutMs: number, log: Logger): Promise<string[]> {
  const dir = path.join(partition.path, 'etc', 'report');
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  const out = path.join(partition.path, 'var', 'xml_report');
  mkdirSync(out, { recursive: true, mode: 0o750 });
  if (process.getuid?.() === 0) chownSync(out, partition.user.uid, partition.user.gid);
  const failed: string[] = [];
  for (const name of names) {
    const file = path.join(out, `slapreport.${randomBytes(6).toString('hex')}`);
    const run = await runAsPartitionUser(path.join(dir, name), [file], { cwd: dir, user: partition.user, timeoutMs });
    if (!run.ok) {
      log.warn(`${partition.id}: etc/report/${name} failed (${run.timedOut ? 'timed out' : `exit ${run.exitCode}`}): ${run.output.trim().slice(-500)}`);
      failed.push(name);
    }
  }
  return failed;
}

/** Reads a regular file without following a symlink a partition user may have planted. */
function readRegularFile(file: string): string | null {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_REPORT_BYTES) return null;
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir).sort().map((name) => path.join(dir, name)).filter((f) => lstatSync(f).isFile());
  } catch {
    return [];
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
  const taken: Array<{ path: string; sha256: string }> = [];
  const unlink = (f: string) => {
    try { unlinkSync(f); } catch (error) { log.warn(`cannot delete ${f}: ${(error as Error).message}`); }
  };
  for (const p of options.partitions) {
    const files = [...listFiles(path.join(p.path, 'var', 'xml_report')), ...listFiles(path.join(options.instanceRoot, 'var', 'xml_report', p.id))];
    for (const file of files) {
      const text = readRegularFile(file);
      if (text === null) continue;
      const digest = sha(text);
      if (store.wasIngested(file, digest)) { unlink(file); continue; }
      try {
        const movements = parseConsumption(text);
        perPartition.set(p.id, [...(perPartition.get(p.id) ?? []), ...movements]);
        taken.push({ path: file, sha256: digest });
      } catch (error) {
        log.info(`${file} is not a valid partition consumption report, left in place: ${(error as Error).message}`);
        invalid.push(file);
      }
    }
  }
  if (taken.length > 0) {
    store.queueFiles('partition-files', partitionFilesJournal(options.computerId, options.now, perPartition), taken, options.now);
    for (const f of taken) unlink(f.path);
  }
  let computerFiles = 0;
  for (const file of listFiles(path.join(options.instanceRoot, 'var', 'xml_report', options.computerId))) {
    const text = readRegularFile(file);
    if (text === null) continue;
    const digest = sha(text);
    if (store.wasIngested(file, digest)) { unlink(file); continue; }
    try {
      validateJournal(text);
    } catch (error) {
      log.info(`${file} is not a valid computer consumption journal, left in place: ${(error as Error).message}`);
      invalid.push(file);
      continue;
    }
    store.queueFiles('computer-file', text, [{ path: file, sha256: digest }], options.now);
    unlink(file);
    computerFiles += 1;
  }
  return { partitionFiles: taken.length, computerFiles, invalid };
}
