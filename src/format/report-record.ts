// What format last reported to the master, beside the state file
// (`<computer_xml>.reported.json`, root's, 0600), written only once the master
// accepted the report. Two uses in a re-run:
// - the report is skipped when what would be sent is what was last accepted,
//   by the same master for the same computer, less than a day ago (so a master
//   that lost its database hears from the node within a day); the HTTP client
//   is then not even loaded;
// - computer_json stands for the state file without marshalling it again to
//   compare (see storedFromJson) when both files are the ones that report
//   was made from.
// A hint, never a source of truth: a missing, damaged or stale record only
// costs the slow path (marshal, report). A run killed between the report and
// the record's write reports again next time (at least once, as before).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from './files.js';

export interface ReportRecord {
  master_url: string;
  computer_id: string;
  /** sha256 of what was sent (see sentDigest). */
  sent_sha256: string;
  /** sha256 of the state files the report was made from (computer_json: null when not configured). */
  state_xml_sha256: string;
  state_json_sha256: string | null;
  /** When the master accepted it (ISO 8601). */
  at: string;
}

/** A report older than this is sent again even if nothing changed. */
export const REPORT_REFRESH_MS = 24 * 3600 * 1000;

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export const reportRecordPath = (computerXml: string): string => `${computerXml}.reported.json`;

/**
 * What is sent, as a digest: without pools the report is the state file's
 * dict (marshalled compactly: one-to-one with the state file's text, whose
 * digest stands for it, so that an unchanged node marshals nothing); with
 * pools, the XML sent itself.
 */
export function sentDigest(sent: { stateXmlSha256: string } | { xml: string }): string {
  return 'xml' in sent ? sha256(`xml\n${sent.xml}`) : sha256(`state\n${sent.stateXmlSha256}`);
}

const FIELDS = ['master_url', 'computer_id', 'sent_sha256', 'state_xml_sha256', 'at'] as const;

/** The record as parsed from its text, or undefined if it is not one (pure). */
export function parseReportRecord(text: string): ReportRecord | undefined {
  try {
    const value = JSON.parse(text) as Record<string, unknown>;
    if (value === null || typeof value !== 'object') return undefined;
    if (!FIELDS.every((k) => typeof value[k] === 'string')) return undefined;
    if (value.state_json_sha256 !== null && typeof value.state_json_sha256 !== 'string') return undefined;
    return value as unknown as ReportRecord;
  } catch {
    return undefined;
  }
}

export function readReportRecord(computerXml: string): ReportRecord | undefined {
  let text: string;
  try {
    text = readFileSync(reportRecordPath(computerXml), 'utf8');
  } catch {
    return undefined;
  }
  return parseReportRecord(text);
}

export function writeReportRecord(computerXml: string, record: ReportRecord): void {
  writeFileAtomic(reportRecordPath(computerXml), `${JSON.stringify(record, null, 2)}\n`, 0o600);
}

/** Whether the report must be sent: anything differs from the last accepted one, or it is older than REPORT_REFRESH_MS (pure). */
export function reportNeeded(last: ReportRecord | undefined, next: Omit<ReportRecord, 'at'>, now: number): boolean {
  if (!last) return true;
  const at = Date.parse(last.at);
  if (!Number.isFinite(at) || now - at >= REPORT_REFRESH_MS || at > now + 60_000) return true;
  return last.master_url !== next.master_url || last.computer_id !== next.computer_id || last.sent_sha256 !== next.sent_sha256 ||
    last.state_xml_sha256 !== next.state_xml_sha256 || last.state_json_sha256 !== next.state_json_sha256;
}

/** The state files on disk are those the last accepted report was made from (then computer_json holds the state file's dict; pure). */
export function stateFilesRecorded(last: ReportRecord | undefined, xmlDigest: string, jsonDigest: string | null): boolean {
  return last !== undefined && jsonDigest !== null && last.state_xml_sha256 === xmlDigest && last.state_json_sha256 === jsonDigest;
}
