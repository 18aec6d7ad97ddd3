// The adversarial suite of docs/design.md "Hostile trees": for every path of
// the table there (parsed from the doc, so that the list and the test cannot
// drift), plant in turn a symlink to a root-only file, a symlink to a
// root-owned directory, a symlink in an intermediate component, a FIFO, a
// 1 GiB sparse file and a directory where a file is expected; then run the
// node's own code for each operation once per planted set, on the hostile
// partition (slappart0, release A) and on a benign one (slappart1, release
// B). Each operation must leave the root-owned targets unchanged, finish (no
// blocking open), either refuse with a message naming the path or replace the
// planted name itself, and still process the benign partition.
//
// Operations are the node's functions, not whole CLI runs (format needs
// interfaces, destruction a supervisord): the file accesses are the same
// code; the CLI paths around them are covered by their own suites.
import test, { type ExecutionContext } from 'ava';
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, symlinkSync, truncateSync,
  writeFileSync, rmSync,
} from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { emptyDirectory, readPartitionText, writeRetentionDate, writeWaitList } from '../../src/accounting/destroy.js';
import { RETENTION_DATE_FILE, RETENTION_DELAY_FILE, WAIT_LIST_FILE } from '../../src/accounting/destroy-plan.js';
import { ingestReportFiles, runReportScripts } from '../../src/accounting/ingest.js';
import { UsageStore } from '../../src/accounting/store.js';
import { writeFilesAtomic } from '../../src/format/files.js';
import { partitionLog } from '../../src/instance/partition-log.js';
import { runManagers } from '../../src/instance/managers-hook.js';
import { Managers } from '../../src/managers/index.js';
import type { ComputerPartition } from '../../src/slap/shapes.js';
import { periodicity, type RunContext } from '../../src/instance/partition.js';
import { readPartitionsStatus } from '../../src/instance/status.js';
import { instanceBuildoutCommand } from '../../src/instance/steps/buildout.js';
import { partitionFiles } from '../../src/partition/files.js';
import {
  ensureSlapgridDirs, readPartitionState, readTextNoFollow, readTimestampFile, writeFileAtomic, writeIfChanged, writePartitionState, writeTimestamp,
} from '../../src/partition/state.js';
import { partitionRef } from '../../src/promise-runner/discover.js';
import { runPartitionPromises } from '../../src/promise-runner/runner.js';
import { handleEvent } from '../../src/promise-runner/watchdog.js';
import { isCompleted, markCompleted, prepareSoftwareDir } from '../../src/software/install.js';
import { isRoot, repoRoot, tempDir } from '../helpers/system.js';
import { partitionUser } from '../promise/helpers.js';

interface Row {
  tree: 'partition' | 'software';
  path: string;
  type: 'file' | 'directory';
  operation: string;
}

/** The table between the hostile-paths markers of docs/design.md. */
function hostileRows(): Row[] {
  const doc = readFileSync(path.join(repoRoot, 'docs', 'design.md'), 'utf8');
  const block = doc.slice(doc.indexOf('<!-- hostile-paths:start -->'), doc.indexOf('<!-- hostile-paths:end -->'));
  const rows: Row[] = [];
  for (const line of block.split('\n')) {
    const m = /^\| (partition|software) \| `([^`]+)` \| (file|directory) \| [^|]+ \| ([\w-]+) \|$/.exec(line);
    if (m) rows.push({ tree: m[1] as Row['tree'], path: m[2]!, type: m[3] as Row['type'], operation: m[4]! });
  }
  return rows;
}

const KINDS = ['link-to-root-file', 'link-to-root-dir', 'intermediate-link', 'fifo', 'sparse-1g', 'directory'] as const;
type Kind = (typeof KINDS)[number];

const HASH_A = 'a'.repeat(32);
const HASH_B = 'b'.repeat(32);

interface World {
  top: string;
  secret: string;
  rootDir: string;
  instanceRoot: string;
  softwareRoot: string;
  user: { name: string; uid: number; gid: number };
}

function snapshot(w: World): string {
  const describe = (file: string) => {
    const st = lstatSync(file);
    const hash = st.isFile() ? createHash('sha256').update(readFileSync(file)).digest('hex') : readdirSync(file).sort().join(',');
    return `${file} ${st.mode} ${st.uid}:${st.gid} ${hash}`;
  };
  return [w.secret, w.rootDir, path.join(w.rootDir, 'keep'), path.join(w.rootDir, 'report')].map(describe).join('\n');
}

function makeWorld(t: ExecutionContext): World {
  const top = tempDir(t, 'slapos-hostile-');
  chmodSync(top, 0o755);
  const secret = path.join(top, 'secret');
  writeFileSync(secret, 'root only\n', { mode: 0o600 });
  const rootDir = path.join(top, 'rootdir');
  mkdirSync(path.join(rootDir, 'report'), { recursive: true, mode: 0o700 });
  chmodSync(rootDir, 0o700);
  writeFileSync(path.join(rootDir, 'keep'), 'keep\n', { mode: 0o600 });
  const instanceRoot = path.join(top, 'srv');
  const softwareRoot = path.join(top, 'soft');
  mkdirSync(instanceRoot, { mode: 0o755 });
  mkdirSync(softwareRoot, { mode: 0o755 });
  const user = partitionUser();
  for (const id of ['slappart0', 'slappart1']) {
    const dir = path.join(instanceRoot, id);
    mkdirSync(dir, { mode: 0o750 });
    // What a partition has before the operations run: a promise and a report script.
    mkdirSync(path.join(dir, 'etc', 'promise'), { recursive: true });
    mkdirSync(path.join(dir, 'etc', 'report'), { recursive: true });
    writeFileSync(path.join(dir, 'etc', 'promise', 'kept'), '#!/bin/sh\necho ok\n', { mode: 0o755 });
    writeFileSync(path.join(dir, 'etc', 'report', 'usage'),
      '#!/bin/sh\nprintf "<consumption><movement><resource>CPU</resource><title>t</title><reference>x</reference><quantity>1</quantity><price>0</price><VAT></VAT></movement></consumption>" > "$1"\n',
      { mode: 0o755 });
    mkdirSync(path.join(dir, 'srv', 'data'), { recursive: true });
    mkdirSync(path.join(dir, 'var'));
    writeFileSync(path.join(dir, 'srv', 'data', 'f'), 'data');
    chownTree(dir, user.uid, user.gid);
  }
  for (const hash of [HASH_A, HASH_B]) {
    const dir = path.join(softwareRoot, hash);
    mkdirSync(dir, { mode: 0o755 });
    writeFileSync(path.join(dir, 'periodicity'), '60');
    chownTree(dir, user.uid, user.gid);
  }
  return { top, secret, rootDir, instanceRoot, softwareRoot, user };
}

function chownTree(dir: string, uid: number, gid: number): void {
  chownSync(dir, uid, gid);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) chownTree(p, uid, gid);
    else if (!entry.isSymbolicLink()) chownSync(p, uid, gid);
  }
}

const baseOf = (w: World, row: Row, hostile: boolean) =>
  row.tree === 'partition' ? path.join(w.instanceRoot, hostile ? 'slappart0' : 'slappart1') : w.softwareRoot;
const relOf = (row: Row, id: string, hash: string) => row.path.replace('<id>', id).replace('<hash>', hash);

/** Plants `kind` at the row's path in the hostile tree; returns the planted path, or undefined when the kind does not apply. */
function plant(w: World, row: Row, kind: Kind): string | undefined {
  const base = baseOf(w, row, true);
  const rel = relOf(row, 'slappart0', HASH_A);
  const parts = rel.split('/');
  const inTree = row.tree === 'software' ? parts.slice(1) : parts; // below the release directory
  const treeBase = row.tree === 'software' ? path.join(base, parts[0]!) : base;
  if (kind === 'intermediate-link') {
    if (inTree.length < 2) return undefined;
    const first = path.join(treeBase, inTree[0]!);
    if (lstatSync(first, { throwIfNoEntry: false })?.isSymbolicLink()) return first; // shared by another row
    rmSync(first, { recursive: true, force: true });
    symlinkSync(w.rootDir, first);
    return first;
  }
  if (kind === 'directory' && row.type === 'directory') return undefined;
  const target = path.join(base, rel);
  // The attacker builds the parents as real directories it owns.
  let parent = treeBase;
  for (const part of inTree.slice(0, -1)) {
    parent = path.join(parent, part);
    if (!lstatSync(parent, { throwIfNoEntry: false })?.isDirectory()) {
      rmSync(parent, { force: true });
      mkdirSync(parent);
    }
  }
  rmSync(target, { recursive: true, force: true });
  switch (kind) {
    case 'link-to-root-file': symlinkSync(w.secret, target); break;
    case 'link-to-root-dir': symlinkSync(w.rootDir, target); break;
    case 'fifo': spawnSync('mkfifo', [target]); break;
    case 'sparse-1g': closeSync(openSync(target, 'w')); truncateSync(target, 1024 ** 3); break;
    case 'directory': mkdirSync(target); writeFileSync(path.join(target, 'x'), 'x'); break;
  }
  return target;
}

/** The planted object is gone from the name (replaced by the node's own file or directory). */
function neutralized(planted: string, kind: Kind): boolean {
  const st = lstatSync(planted, { throwIfNoEntry: false });
  if (!st) return true;
  switch (kind) {
    case 'link-to-root-file': case 'link-to-root-dir': case 'intermediate-link': return !st.isSymbolicLink();
    case 'fifo': return !st.isFIFO();
    case 'sparse-1g': return !st.isFile() || st.size < 1024 ** 3;
    case 'directory': return !st.isDirectory();
  }
}

type Operation = (w: World, id: string, hash: string, log: pino.Logger) => Promise<void> | void;

const OPERATIONS: Record<string, Operation> = {
  timestamp: (w, id) => {
    const files = partitionFiles(w.instanceRoot, id);
    readPartitionsStatus(w.instanceRoot);
    readTimestampFile(files);
    writeTimestamp(files, '100');
  },
  state: (w, id) => {
    const files = partitionFiles(w.instanceRoot, id);
    readPartitionState(files);
    ensureSlapgridDirs(files, w.user);
    writePartitionState(files, { lastSuccess: 1 });
  },
  'instance-log': (w, id, _hash, log) => {
    const files = partitionFiles(w.instanceRoot, id);
    ensureSlapgridDirs(files, w.user);
    const pl = partitionLog(log, files, id, w.user.gid);
    pl.log.info('hello');
    pl.close();
  },
  'error-log': (w, id) => {
    const files = partitionFiles(w.instanceRoot, id);
    writeFileAtomic(files.errorLog, 'failed', 0o644);
  },
  resource: async (w, id) => {
    const files = partitionFiles(w.instanceRoot, id);
    readTextNoFollow(files.resource);
    await writeFilesAtomic([{ path: files.resource, content: '{}', mode: 0o644 }]);
  },
  configuration: (w, id) => {
    writeIfChanged(partitionFiles(w.instanceRoot, id).configuration, '{}\n', 0o640, { uid: 0, gid: w.user.gid });
  },
  'buildout-cfg': (w, id) => {
    writeIfChanged(partitionFiles(w.instanceRoot, id).buildoutCfg, '[buildout]\n', 0o640, { uid: 0, gid: w.user.gid });
  },
  promise: async (w, id, _hash, log) => {
    const result = await runPartitionPromises(partitionRef(w.instanceRoot, id), { mode: 'test', timeout: 5, log });
    if (result.failed.length > 0) throw new Error(`${id}: promise failed: ${result.error}`);
  },
  watchdog: async (w, id, _hash, log) => {
    await handleEvent({ headers: { eventname: 'PROCESS_STATE_EXITED' }, payload: { processname: 'x-on-watch', groupname: id } }, {
      instanceRoot: w.instanceRoot, bang: async () => {}, log,
    });
  },
  report: async (w, id, _hash, log) => {
    const dir = path.join(w.instanceRoot, id);
    const failed = await runReportScripts({ id, path: dir, user: { ...w.user, home: dir } }, 10_000, log);
    if (failed.length > 0) throw new Error(`${dir}: report scripts failed: ${failed.join(', ')}`);
    const store = new UsageStore(path.join(w.top, `usage-${id}`, 'usage.db')); // the store makes its directory 0700
    try {
      const result = ingestReportFiles(store, { instanceRoot: w.instanceRoot, computerId: 'COMP-1', partitions: [{ id, path: dir }], log, now: 1000 });
      if (result.partitionFiles !== 1) throw new Error(`${dir}: ${result.partitionFiles} report files ingested`);
    } finally {
      store.close();
    }
  },
  'destroy-files': (w, id, _hash, log) => {
    const target = { id, path: path.join(w.instanceRoot, id), user: { ...w.user, home: '/' } };
    for (const f of [WAIT_LIST_FILE, RETENTION_DELAY_FILE, RETENTION_DATE_FILE]) readPartitionText(target, f, log);
    writeWaitList(target, ['a']);
    writeRetentionDate(target, 5);
  },
  wipe: (w, id, _hash, log) => {
    const target = { id, path: path.join(w.instanceRoot, id), user: { ...w.user, home: '/' } };
    emptyDirectory(target, log);
  },
  software: (w, _id, hash) => {
    prepareSoftwareDir({ softwarePath: path.join(w.softwareRoot, hash), user: w.user, url: 'http://x/software.cfg', sharedPartList: [], buildTimePartList: [] });
  },
  completed: (w, _id, hash) => {
    isCompleted(w.softwareRoot, hash);
    markCompleted(path.join(w.softwareRoot, hash));
  },
  'release-buildout': (w, _id, hash, log) => {
    const command = instanceBuildoutCommand(path.join(w.softwareRoot, hash), undefined, log);
    if (command.some((word) => word.includes('root only'))) throw new Error('read a root-only file');
  },
  managers: async (w, id, _hash, log) => {
    // A stand-in for nft (records the scripts): the suite must not touch the host's rules.
    const scripts: string[] = [];
    const nft = { command: ['stand-in'], apply: async (script: string) => { scripts.push(script); }, list: async () => '' };
    const managers = new Managers({
      instanceRoot: w.instanceRoot, enabled: ['cpuset', 'devperm', 'portredir', 'whitelistfirewall'], powerUsers: new Set([w.user.name]), allowedDisks: [],
      firewall: undefined, nftCommand: [], blockDevices: [], routableIpv4: [], ipv4Interface: undefined, timeoutMs: 1000,
    }, { log, nft, listening: () => new Set() });
    await runManagers(managers, w.instanceRoot, id, () => ({ parameters: { ip_list: [] } }) as unknown as ComputerPartition, log);
  },
  periodicity: (w, _id, hash, log) => {
    const ctx = { settings: { maximumPeriodicity: 86400 }, cache: { periodicity: new Map() }, log } as unknown as RunContext;
    periodicity(ctx, path.join(w.softwareRoot, hash));
  },
};

function capturingLogger(lines: string[]): pino.Logger {
  return pino({ level: 'debug' }, new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString()); // the whole record: the path may be named by a field or by the error
      done();
    },
  }));
}

const rootTest = isRoot ? test.serial : test.skip;

test('the doc table lists every operation the suite runs, and only those', (t) => {
  const rows = hostileRows();
  t.true(rows.length >= 15);
  t.deepEqual([...new Set(rows.map((r) => r.operation))].sort(), Object.keys(OPERATIONS).sort());
});

for (const kind of KINDS) {
  rootTest(`${kind} planted at each hostile path in turn: targets unchanged, no hang, refused or replaced with the path named, the other partition processed${isRoot ? '' : ' (skipped: needs root)'}`, async (t) => {
    t.timeout(90_000);
    let exercised = 0;
    for (const row of hostileRows()) {
      // A fresh node per planted path: an earlier plant must not shield a later path.
      const w = makeWorld(t);
      const p = plant(w, row, kind);
      if (p === undefined) continue;
      exercised += 1;
      const before = snapshot(w);
      const messages: string[] = [];
      const started = Date.now();
      try {
        await OPERATIONS[row.operation]!(w, 'slappart0', HASH_A, capturingLogger(messages));
      } catch (error) {
        messages.push((error as Error).message);
      }
      t.true(Date.now() - started < 20_000, `${row.path}: ${row.operation} took ${Date.now() - started} ms`);
      // The benign partition (and release) is processed all the same, without any error.
      const benignMessages: string[] = [];
      try {
        await OPERATIONS[row.operation]!(w, 'slappart1', HASH_B, capturingLogger(benignMessages));
      } catch (error) {
        t.fail(`${row.path} (${kind}): ${row.operation} on the benign partition: ${(error as Error).message}; ${benignMessages.join('; ')}`);
      }
      t.false(benignMessages.some((m) => /refused|symbolic link|not a regular file|FIFO/.test(m)), `${row.operation}: ${benignMessages.join('; ')}`);
      t.is(snapshot(w), before, `${row.path} (${kind}, ${row.operation}): root-owned targets unchanged`);
      // The planted name is either replaced by the node's own file, or the
      // operation refused with an error naming a path of the hostile tree.
      const hostileBase = row.tree === 'partition' ? path.join(w.instanceRoot, 'slappart0') : path.join(w.softwareRoot, HASH_A);
      const named = messages.some((m) => m.includes(`${hostileBase}/`));
      t.true(neutralized(p, kind) || named, `${row.path} (${kind}, ${row.operation}): neither replaced nor refused with its path named; messages: ${messages.join(' | ')}`);
    }
    t.true(exercised > 0);
  });
}

rootTest(`a report script leaving a background grandchild: the whole tree is killed at the timeout${isRoot ? '' : ' (skipped: needs root)'}`, async (t) => {
  const w = makeWorld(t);
  const dir = path.join(w.instanceRoot, 'slappart0');
  const pidFile = path.join(dir, 'grandchild.pid');
  writeFileSync(path.join(dir, 'etc', 'report', 'usage'), `#!/bin/sh\nsleep 1000 &\necho $! > ${pidFile}\nsleep 1000\n`, { mode: 0o755 });
  chownSync(path.join(dir, 'etc', 'report', 'usage'), w.user.uid, w.user.gid);
  const messages: string[] = [];
  const started = Date.now();
  const failed = await runReportScripts({ id: 'slappart0', path: dir, user: { ...w.user, home: dir } }, 500, capturingLogger(messages));
  t.true(Date.now() - started < 5_000);
  t.deepEqual(failed, ['usage']);
  t.true(messages.some((m) => m.includes('timed out: process tree killed')));
  const grandchild = Number(readFileSync(pidFile, 'utf8'));
  await new Promise((r) => setTimeout(r, 200));
  let state = '';
  try {
    const stat = readFileSync(`/proc/${grandchild}/stat`, 'utf8');
    state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    state = 'gone';
  }
  t.true(state === 'gone' || state === 'Z', `grandchild ${grandchild} state ${state}`);
});

rootTest(`the CLI: node promise and node status with a FIFO at every partition path of slappart0 finish and still check slappart1${isRoot ? '' : ' (skipped: needs root)'}`, async (t) => {
  const w = makeWorld(t);
  const includeDir = path.join(w.instanceRoot, 'etc', 'supervisord.conf.d');
  mkdirSync(includeDir, { recursive: true });
  for (const id of ['slappart0', 'slappart1']) writeFileSync(path.join(includeDir, `${id}.conf`), `[group:${id}]\n`);
  for (const row of hostileRows().filter((r) => r.tree === 'partition' && r.operation !== 'wipe')) plant(w, row, 'fifo');
  const before = snapshot(w);
  const cfg = path.join(w.top, 'slapos.cfg');
  writeFileSync(cfg, `[slapos]\ninstance_root = ${w.instanceRoot}\npidfile_instance = ${w.top}/cp.pid\npromise_timeout = 5\n`);
  const slapos = (args: string[]) => new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'slapos.js'), ...args, '--cfg', cfg], { env: { PATH: process.env.PATH ?? '' }, timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  const promise = await slapos(['node', 'promise', '--json']);
  t.is(promise.signal, null, 'finished by itself (no hang)');
  t.not(promise.code, 0);
  t.true(promise.stderr.includes(path.join(w.instanceRoot, 'slappart0', '.slapgrid')), promise.stderr);
  t.true(existsSync(path.join(w.instanceRoot, 'slappart1', '.slapgrid', 'promise', 'result', 'kept.status.json')), 'slappart1 was checked');
  const status = await slapos(['node', 'status', '--json']);
  t.is(status.signal, null, 'finished by itself (no hang)');
  t.is(status.code, 0, status.stderr);
  t.is(snapshot(w), before);
});
