// The buildout fork server (issue 31, docs/performance.md "Fork server") keeps
// the containment of the plain path (issue 23): a buildout extension of a test
// profile records what the buildout process sees (user, groups, cgroup,
// environment, descriptors, NoNewPrivs, umask, session, signals, Python's
// start-up state) under the fork server and under the exec'd launcher, and
// the two must be the same; partition_timeout kills a hanging child; the same
// `.installed.cfg` and the same exit statuses, a failing profile included.
// Real Debian zc.buildout, as a test user, in a test cgroup.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CgroupTree } from '../../src/cgroup/group.js';
import { detectLayout } from '../../src/cgroup/layout.js';
import { BuildoutForkServer } from '../../src/executor/fork-server.js';
import { BUILDOUT_LAUNCHER, BuildoutFailedError, runBuildout, SYSTEM_PYTHON } from '../../src/software/buildout.js';
import { createLogger } from '../../src/util/log.js';
import { buildoutClientPath } from '../../src/native/index.js';
import { createUser, isAlive, isRoot, tempDir, testName, type TestUser } from '../helpers/system.js';

const rootTest = isRoot ? test.serial : test.skip;
const log = createLogger({ quiet: true });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The probe: a develop egg (an .egg-link and its egg-info, written by hand: no setup.py run) whose
// zc.buildout extension writes what it sees to seen.json, and hangs when the profile says so.
const PROBE = `
import json, locale, os, re, signal, sys, time

def ext(buildout):
    status = dict(line.split(':\\t', 1) for line in open('/proc/self/status').read().splitlines() if ':\\t' in line)
    def fd_kind(fd):
        try:
            target = os.readlink('/proc/self/fd/' + fd)
        except OSError:
            return None  # the listing's own descriptor, closed meanwhile
        return re.sub(r'\\[\\d+\\]', '', target)
    fds = {fd: fd_kind(fd) for fd in os.listdir('/proc/self/fd')}
    seen = {
        'ppid': os.getppid(),
        'resuid': os.getresuid(), 'resgid': os.getresgid(), 'groups': sorted(os.getgroups()),
        'cgroup': re.sub(r'/run-\\d+-\\d+', '/run-N', open('/proc/self/cgroup').read()),
        'environ': dict(os.environ),
        'fds': {fd: kind for fd, kind in fds.items() if kind is not None},
        'no_new_privs': status['NoNewPrivs'].strip(), 'umask': status['Umask'].strip(),
        'cap_eff': status['CapEff'].strip(), 'sig_ign': status['SigIgn'].strip(), 'sig_blk': status['SigBlk'].strip(),
        'session_leader': os.getsid(0) == os.getpid(), 'group_leader': os.getpgid(0) == os.getpid(),
        'cwd': os.getcwd(), 'argv': sys.argv, 'flags': list(sys.flags), 'path': sys.path,
        'encodings': [sys.getfilesystemencoding(), locale.getpreferredencoding(False), sys.stdout.encoding, sys.stderr.errors],
        'stdout_line_buffering': sys.stdout.line_buffering,
        'sigint': str(signal.getsignal(signal.SIGINT)), 'sigterm': str(signal.getsignal(signal.SIGTERM)),
    }
    directory = buildout['buildout']['directory']
    with open(os.path.join(directory, 'seen.json'), 'w') as out:
        json.dump(seen, out)
    if buildout['buildout'].get('hang') == 'true':
        with open(os.path.join(directory, 'hanging.pid'), 'w') as out:
            out.write(str(os.getpid()))
        time.sleep(600)


class Recipe:
    # A part for .installed.cfg: one file, its content from the profile.
    def __init__(self, buildout, name, options):
        self.path = os.path.join(buildout['buildout']['parts-directory'], name)
        self.options = options
        options['created'] = self.path

    def install(self):
        with open(self.path, 'w') as out:
            out.write(self.options.get('text', ''))
        return [self.path]

    def update(self):
        return []
`;

interface Setup {
  dir: string;
  user: TestUser;
  tree: CgroupTree;
  group: string;
}

function setUp(t: ExecutionContext): Setup {
  const user = createUser(t);
  // A supplementary group, so that the groups rule shows.
  const extra = testName('sltg');
  spawnSync('groupadd', ['--system', extra]);
  t.teardown(() => { spawnSync('groupdel', [extra]); });
  spawnSync('usermod', ['-aG', extra, user.name]);
  const root = tempDir(t);
  chmodSync(root, 0o755);
  const dir = path.join(root, 'slappart0');
  const src = path.join(dir, 'probe-src');
  mkdirSync(path.join(src, 'probe.egg-info'), { recursive: true });
  mkdirSync(path.join(dir, 'develop-eggs'));
  writeFileSync(path.join(src, 'probe.py'), PROBE);
  writeFileSync(path.join(src, 'probe.egg-info', 'PKG-INFO'), 'Metadata-Version: 1.0\nName: probe\nVersion: 1.0\n');
  writeFileSync(path.join(src, 'probe.egg-info', 'entry_points.txt'), '[zc.buildout.extension]\nprobe = probe:ext\n[zc.buildout]\ndefault = probe:Recipe\n');
  writeFileSync(path.join(dir, 'develop-eggs', 'probe.egg-link'), `${src}\n.\n`);
  spawnSync('chown', ['-R', `${user.uid}:${user.gid}`, dir]);
  chmodSync(dir, 0o750);
  const group = 'slappart0';
  const tree = new CgroupTree(detectLayout(), testName('slapos-test-'));
  tree.create(group);
  t.teardown(async () => {
    await tree.kill(group).catch(() => undefined);
    for (let i = 0; i < 100; i++) {
      try {
        for (const d of tree.directories(group)) spawnSync('find', [d, '-mindepth', '1', '-depth', '-type', 'd', '-delete']);
        tree.remove(group);
        break;
      } catch {
        await sleep(20);
      }
    }
    tree.removeParent();
  });
  return { dir, user, tree, group };
}

function profile(s: Setup, name: string, lines: string[]): string {
  const file = path.join(s.dir, name);
  writeFileSync(file, ['[buildout]', 'extensions = probe', 'offline = true', 'newest = false', ...lines, ''].join('\n'));
  chownSync(file, s.user.uid, s.user.gid);
  return file;
}

async function run(s: Setup, cfg: string, server: BuildoutForkServer | undefined, timeout?: number): Promise<{ output: string; exitCode: number | undefined; error?: BuildoutFailedError }> {
  const options = {
    command: [SYSTEM_PYTHON, BUILDOUT_LAUNCHER], args: ['-U', '-c', cfg], cwd: s.dir, user: { uid: s.user.uid, gid: s.user.gid, name: s.user.name },
    initGroups: true, home: s.dir, log, label: 'test', timeout, env: { SLAPGRID_INSTANCE_ROOT: path.dirname(s.dir), EDITOR: 'vi' },
    cgroup: { tree: s.tree, group: s.group }, noNewPrivs: true, forkServer: server,
  };
  try {
    return { output: await runBuildout(options), exitCode: 0 };
  } catch (error) {
    if (!(error instanceof BuildoutFailedError)) throw error;
    return { output: error.output, exitCode: error.exitCode, error };
  }
}

const seen = (s: Setup) => {
  const file = path.join(s.dir, 'seen.json');
  const value = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  rmSync(file);
  return value;
};

function startServer(t: ExecutionContext): BuildoutForkServer {
  const server = new BuildoutForkServer(log);
  t.teardown(() => server.close());
  return server;
}

rootTest('a child of the fork server sees what an exec\'d buildout sees: user, groups, cgroup, environment, descriptors, NoNewPrivs', async (t) => {
  const s = setUp(t);
  const server = startServer(t);
  const cfg = profile(s, 'buildout.cfg', ['parts =']);
  const viaExec = await run(s, cfg, undefined);
  t.is(viaExec.exitCode, 0, viaExec.output);
  const plain = seen(s);
  const viaServer = await run(s, cfg, server);
  t.is(viaServer.exitCode, 0, viaServer.output);
  const forked = seen(s);
  // The one intended difference: who the parent is (the node for an exec'd run, the server for a forked one).
  t.is(plain['ppid'], process.pid);
  t.not(forked['ppid'], process.pid, 'the run was forked by the server');
  delete plain['ppid'];
  delete forked['ppid'];
  t.deepEqual(forked, plain);
  // And what both are.
  t.deepEqual(plain['resuid'], [s.user.uid, s.user.uid, s.user.uid]);
  t.deepEqual(plain['resgid'], [s.user.gid, s.user.gid, s.user.gid]);
  t.is((plain['groups'] as number[]).length, 2, 'its own group and the supplementary one');
  t.is(plain['no_new_privs'], '1');
  t.is(plain['umask'], '0027');
  t.is(plain['cap_eff'], '0000000000000000');
  t.true(plain['session_leader']);
  t.deepEqual(Object.keys(plain['fds'] as object).sort(), ['0', '1', '2'], 'no inherited descriptor');
  t.regex(plain['cgroup'] as string, new RegExp(`/${s.group}/run-N`));
  t.is((plain['environ'] as Record<string, string>)['HOME'], s.dir);
});

rootTest('fork server: partition_timeout kills a hanging child; the server then runs the next one', async (t) => {
  const s = setUp(t);
  const server = startServer(t);
  const hanging = await run(s, profile(s, 'hang.cfg', ['parts =', 'hang = true']), server, 1500);
  t.truthy(hanging.error);
  t.regex(hanging.output, /timed out after 1\.5 s: process tree killed/);
  const pid = Number(readFileSync(path.join(s.dir, 'hanging.pid'), 'utf8'));
  for (let i = 0; i < 50 && isAlive(pid); i++) await sleep(50);
  t.false(isAlive(pid), 'the hanging child is gone');
  t.not(seen(s)['ppid'], process.pid, 'it was a child of the server');
  const next = await run(s, profile(s, 'buildout.cfg', ['parts =']), server);
  t.is(next.exitCode, 0, next.output);
  t.not(seen(s)['ppid'], process.pid);
});

rootTest('fork server: the same .installed.cfg and exit statuses as the exec\'d launcher, a failing profile included', async (t) => {
  const s = setUp(t);
  const server = startServer(t);
  const installed = path.join(s.dir, '.installed.cfg');
  const cases = [
    { name: 'good.cfg', lines: ['parts = one two', '[one]', 'recipe = probe', 'text = 1', '[two]', 'recipe = probe', 'text = ${one:created}'] },
    { name: 'failing-recipe.cfg', lines: ['parts = one', '[one]', 'recipe = notinstalled'] },
    { name: 'undefined-part.cfg', lines: ['parts = nothere'] },
    { name: 'bad-syntax.cfg', lines: ['parts =', '[broken', 'x = 1'] },
    { name: 'bad-extends.cfg', lines: ['extends = does-not-exist.cfg', 'parts ='] },
  ];
  for (const c of cases) {
    const cfg = profile(s, c.name, c.lines);
    const results = [];
    for (const server_ of [undefined, server]) {
      for (const made of ['.installed.cfg', 'bin', 'parts', 'eggs']) rmSync(path.join(s.dir, made), { recursive: true, force: true });
      const result = await run(s, cfg, server_);
      results.push({
        exitCode: result.exitCode, output: result.output.trim().split('\n').filter((line) => !line.startsWith('Traceback') && !line.startsWith('  File ')),
        installed: existsSync(installed) ? readFileSync(installed, 'utf8') : null,
      });
      rmSync(path.join(s.dir, 'seen.json'), { force: true });
    }
    t.deepEqual(results[1], results[0], c.name);
    t.is(results[0]!.exitCode === 0, c.name === 'good.cfg', `${c.name}: ${results[0]!.output.join('\n')}`);
    if (c.name === 'good.cfg') t.regex(results[0]!.installed ?? '', /\[two\][^[]*recipe = probe/);
  }
});

rootTest('fork server: only root reaches it, and it never forks a child as uid or gid 0', async (t) => {
  const server = startServer(t);
  const socket = await server.socket();
  if (socket === undefined) return t.fail('the server did not start');
  // Another user cannot even reach the socket (a 0700 root directory); the server would refuse its uid too.
  const other = spawnSync(buildoutClientPath, ['--socket', socket, '--uid', '65534', '--gid', '65534', '--', '-U'], { uid: 65534, gid: 65534, encoding: 'utf8' });
  t.is(other.status, 127);
  t.regex(other.stderr, /cannot reach the fork server/);
  // The client refuses uid 0; a hand-made request for uid 0 is refused by the server itself.
  const client = spawnSync(buildoutClientPath, ['--socket', socket, '--uid', '0', '--gid', '0', '--', '-U'], { encoding: 'utf8' });
  t.is(client.status, 127);
  t.regex(client.stderr, /refusing to run as uid\/gid 0/);
  const forged = spawnSync(SYSTEM_PYTHON, ['-c', [
    'import os, socket, sys',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)',
    's.connect(sys.argv[1])',
    'fields = [b"0", b"0", b"22", b"0", b"0", b"0", b"0", b"0"]',
    'socket.send_fds(s, [b"\\0".join(fields) + b"\\0"], [0, 1, 2, os.open(".", os.O_PATH)])',
    'print(s.recv(256).decode())',
  ].join('\n'), socket], { encoding: 'utf8' });
  t.is(forged.status, 0, forged.stderr);
  t.regex(forged.stdout, /^error refusing to run as uid\/gid 0/);
});
