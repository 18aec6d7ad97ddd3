// The rule "root touches partition and software trees only through
// src/safe-fs" checked by a program (issue 23), as layers.test.ts checks
// imports: in the folders whose job involves those trees, a module may use
// node:fs (or fs/promises, or a package that opens files for it) only for the
// functions listed below, each with the reason why the paths it gets are not
// in a hostile tree. A new call, or a new module calling node:fs there, fails
// until it goes through safe-fs or is added here with its reason (review).
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../helpers/system.js';

/** Folders whose code handles partition or software trees. */
const SCOPE = ['src/instance', 'src/promise-runner', 'src/software', 'src/accounting', 'src/partition', 'src/supervisor', 'src/executor', 'src/node', 'src/format'];

/** Modules that open files for their caller: importing them there is a node:fs use too. */
const FS_PACKAGES = ['fs-extra', 'graceful-fs', 'glob', 'fast-glob', 'rimraf', 'chokidar', 'tar'];

/** file → node:fs names it may import, and why its paths are not in a hostile tree. */
const ALLOWED: Record<string, { names: string[]; why: string }> = {
  'src/instance/partition-log.ts': { names: ['closeSync', 'constants', 'fchownSync', 'fstatSync', 'writeSync'], why: 'on descriptors opened by safe-fs' },
  'src/instance/partition.ts': { names: ['existsSync', 'lstatSync', 'readFileSync'], why: 'lstat of the partition directory itself (its entry is in root\'s instance_root); root-owned state files' },
  'src/instance/status.ts': { names: ['readdirSync', 'statSync'], why: 'instance_root listing and partition directories\' own entries' },
  'src/instance/digest.ts': { names: ['readFileSync'], why: 'the decision cache under instance_root/var (root\'s)' },
  'src/instance/steps/install.ts': { names: ['existsSync', 'lchownSync', 'lstatSync', 'readlinkSync', 'statSync', 'symlinkSync', 'unlinkSync'], why: 'the software_release link, as a name in the partition directory (never followed); software_root entries' },
  'src/promise-runner/bang.ts': { names: ['existsSync', 'readFileSync'], why: 'node configuration and certificate files (root\'s)' },
  'src/promise-runner/discover.ts': { names: ['existsSync', 'readdirSync', 'lstatSync'], why: 'instance_root listing and the partition directory\'s own entry' },
  'src/promise-runner/interpreter.ts': { names: ['lstatSync', 'readlinkSync', 'statSync'], why: 'the node\'s own Python (outside any tree)' },
  'src/promise-runner/status.ts': { names: ['readdirSync'], why: 'instance_root listing' },
  'src/promise-runner/runner.ts': { names: ['existsSync'], why: 'the node\'s promise launcher in its package' },
  'src/software/readable.ts': { names: ['readFileSync', 'statSync', 'type Stats'], why: 'software_root itself and its parents (root\'s), /etc/passwd' },
  'src/software/loop.ts': { names: ['existsSync', 'statSync'], why: 'software_root itself and the node\'s configuration' },
  'src/executor/fork-server.ts': { names: ['mkdtempSync', 'rmSync'], why: 'the fork server\'s own socket directory under the node\'s tmpdir (root\'s, 0700)' },
  'src/software/buildout.ts': { names: ['closeSync', 'openSync', 'readSync'], why: 'the node\'s own bootstrap files in its package' },
  'src/software/install.ts': { names: ['chmodSync', 'chownSync', 'existsSync', 'lstatSync', 'mkdirSync', 'readdirSync', 'rmSync', 'statfsSync', 'writeFileSync'], why: 'software_root itself; the chmod/rm fallback of removeTree runs only when not root (the tree is then our own)' },
  'src/accounting/hardware.ts': { names: ['readFileSync', 'readdirSync'], why: '/proc and /sys' },
  'src/accounting/partitions.ts': { names: ['lstatSync', 'readdirSync', 'readFileSync'], why: 'instance_root listing, partition directories\' own entries, format\'s root-owned state file' },
  'src/accounting/store.ts': { names: ['chmodSync', 'mkdirSync'], why: 'the usage database directory (root\'s)' },
  'src/accounting/report.ts': { names: ['readFileSync'], why: 'node configuration (root\'s)' },
  'src/accounting/destroy.ts': { names: ['existsSync', 'lstatSync', 'readdirSync', 'rmSync', 'unlinkSync'], why: 'the partition directory\'s own entry; supervisord\'s include directory and the certificate repository (root\'s); cgroupfs' },
  'src/accounting/collect.ts': { names: ['readFileSync'], why: '/proc' },
  'src/accounting/disk.ts': { names: ['closeSync', 'constants', 'lstatSync'], why: 'entries through a safe-fs descriptor (/proc/self/fd/N/<name>)' },
  'src/supervisor/groups.ts': { names: ['readdirSync', 'rmSync'], why: 'supervisord\'s include directory under instance_root/etc (root\'s)' },
  'src/supervisor/status.ts': { names: ['accessSync', 'constants'], why: 'supervisord\'s socket (root\'s)' },
  'src/supervisor/daemon.ts': { names: ['chmodSync', 'existsSync', 'mkdirSync', 'readFileSync', 'writeFileSync', 'renameSync', 'rmSync'], why: 'supervisord\'s configuration, socket and pid file under instance_root/{etc,var} (root\'s)' },
  'src/node/daemon/watch.ts': { names: ['existsSync', 'readdirSync', 'statSync', 'watch', 'type FSWatcher'], why: 'instance_root and software_root themselves; fs.watch of partition directories (inotify, nothing opened in them)' },
  'src/node/boot.ts': { names: ['readdirSync'], why: 'instance_root listing' },
  'src/node/systemd.ts': { names: ['existsSync', 'mkdirSync', 'readFileSync', 'readdirSync', 'rmSync'], why: 'systemd unit directories' },
  'src/instance/managers-hook.ts': { names: ['lstatSync'], why: 'the partition directory\'s own entry (in root\'s instance_root, never followed)' },
  'src/software/command.ts': { names: ['existsSync'], why: 'the [networkcache] files named in the node configuration (root\'s)' },
  'src/node/partition-metrics.ts': { names: ['existsSync'], why: 'the usage database under instance_root/var (root\'s)' },
  'src/format/pools-hook.ts': { names: ['statSync'], why: 'partition directories\' own entries in root\'s instance_root (their owner uid)' },
  'src/format/settings.ts': { names: ['existsSync'], why: 'node configuration' },
  'src/format/observe.ts': { names: ['readdirSync', 'readFileSync', 'statSync'], why: 'format\'s state files, cgroupfs, /sys, instance_root listing' },
  'src/format/files.ts': { names: ['mkdirSync'], why: 'instance_root and software_root themselves' },
  'src/format/report-record.ts': { names: ['readFileSync'], why: 'format\'s own record beside the state file (computer_xml), root\'s' },
  'src/format/apply.ts': { names: ['chmodSync', 'chownSync', 'mkdirSync', 'rmdirSync', 'unlinkSync', 'writeFileSync'], why: 'instance_root, software_root and new partition directories\' own entries (created by root, before any user owns them); state files' },
};

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) out.push(...sources(file));
    else if (name.endsWith('.ts')) out.push(file);
  }
  return out;
}

/** The names a source imports from node:fs / fs / fs/promises, and the fs-like packages it imports. */
export function fsImports(text: string): { names: string[]; packages: string[] } {
  const names: string[] = [];
  const packages: string[] = [];
  for (const m of text.matchAll(/import\s+(?:type\s+)?([^;]*?)\s+from\s+'([^']+)'/gs)) {
    const [, clause = '', from = ''] = m;
    if (/^(node:)?fs(\/promises)?$/.test(from)) {
      const braces = /\{([^}]*)\}/.exec(clause);
      if (braces) names.push(...(braces[1] ?? '').split(',').map((s) => s.trim().replace(/\s+as\s+\w+$/, '')).filter((s) => s !== ''));
      const whole = clause.replace(/\{[^}]*\}/, '').replace(/,/g, '').trim();
      if (whole !== '') names.push(`* ${whole}`); // default or namespace import: every function
    } else if (FS_PACKAGES.includes(from.split('/')[0] ?? '')) {
      packages.push(from);
    }
  }
  for (const m of text.matchAll(/(?:require|import)\(\s*'((?:node:)?fs(?:\/promises)?)'\s*\)/g)) names.push(`* dynamic ${m[1]}`);
  return { names, packages };
}

test('fsImports reads named, default, namespace and dynamic imports', (t) => {
  t.deepEqual(fsImports("import { readFileSync, type Stats } from 'node:fs';\nimport fs from 'fs';\nimport * as p from 'node:fs/promises';"), {
    names: ['readFileSync', 'type Stats', '* fs', '* * as p'], packages: [],
  });
  t.deepEqual(fsImports("const f = await import('node:fs');\nimport g from 'fast-glob';"), { names: ['* dynamic node:fs'], packages: ['fast-glob'] });
});

test('outside src/safe-fs, modules that handle partition or software trees use node:fs only as listed, with a reason', (t) => {
  const problems: string[] = [];
  for (const folder of SCOPE) {
    for (const file of sources(path.join(repoRoot, folder))) {
      const rel = path.relative(repoRoot, file);
      const { names, packages } = fsImports(readFileSync(file, 'utf8'));
      const allowed = new Set(ALLOWED[rel]?.names ?? []);
      for (const name of names) if (!allowed.has(name)) problems.push(`${rel}: node:fs ${name} (go through src/safe-fs, or list it in test/unit/hostile-fs.test.ts with why its paths are not in a partition or software tree)`);
      for (const pkg of packages) problems.push(`${rel}: imports ${pkg}, which opens files (use src/safe-fs)`);
    }
  }
  t.deepEqual(problems, []);
  // The list stays short and true: every entry is still used.
  for (const [rel, { names }] of Object.entries(ALLOWED)) {
    const used = new Set(fsImports(readFileSync(path.join(repoRoot, rel), 'utf8')).names);
    for (const name of names) t.true(used.has(name), `${rel}: ${name} listed but no longer imported; remove it from the list`);
  }
});
