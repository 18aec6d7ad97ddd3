// `npm run bench -- buildout [--rounds N] [--launcher-b <file.py>]`: where a
// no-change instance buildout run's time goes (docs/performance.md,
// "Instance buildouts"). As root: builds the example release once, deploys
// one partition owned by nobody, then runs cumulative stages (interpreter,
// the imports buildout needs, the launcher's imports, the whole run) as
// nobody, alternating the stages round by round. Prints the median CPU time
// (user + sys of the reaped child, from /proc/self/stat) and wall time of
// each; with --launcher-b, the same for that launcher (e.g. main's) and the
// median of the pairwise CPU ratios of the whole runs. The last stage is the
// same run forked by the buildout fork server (src/executor/fork-server.ts)
// through its client: CPU of the client plus the child (read from the
// server's reaped-children times), the server's start-up counted apart.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BUILDOUT_LAUNCHER, SYSTEM_PYTHON } from '../src/software/buildout.js';
import { BuildoutForkServer } from '../src/executor/fork-server.js';
import { buildoutClientPath } from '../src/native/index.js';
import { createLogger } from '../src/util/log.js';
import { header, loadLine, median, parseArgs, repo } from './lib.js';
import { childrenCpuMs } from './instance-env.js';

const NOBODY = 65534;
const EXAMPLE = path.join(repo, 'examples', 'hello-http', 'software.cfg');

export async function main(args: string[]): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('run the buildout benchmark as root');
  const { opts } = parseArgs(args);
  const rounds = Number(opts.get('rounds') ?? 10);
  const launcherB = opts.get('launcher-b');
  header('no-change instance buildout, cumulative stages, as nobody');
  const dir = mkdtempSync(path.join(tmpdir(), 'slapos-bench-buildout-'));
  chmodSync(dir, 0o755);
  const server = new BuildoutForkServer(createLogger({ quiet: true }));
  try {
    const release = path.join(dir, 'release');
    const part = path.join(dir, 'part');
    mkdirSync(release);
    mkdirSync(part);
    writeFileSync(path.join(release, 'buildout.cfg'), `[buildout]\nextends = ${EXAMPLE}\n`);
    const build = spawnSync(SYSTEM_PYTHON, [BUILDOUT_LAUNCHER, '-U', '-c', 'buildout.cfg'], { cwd: release, encoding: 'utf8', env: { HOME: release, PYTHONNOUSERSITE: 'true' } });
    if (build.status !== 0) throw new Error(`building the example release failed:\n${build.stdout}${build.stderr}`);
    // The partition's buildout.cfg: the release's instance.cfg and a tail like the node's (src/instance/tail.ts).
    writeFileSync(path.join(part, 'buildout.cfg'), `${readFileSync(path.join(release, 'instance.cfg'), 'utf8')}\n\n[buildout]\nbin-directory = \${buildout:directory}/sbin\noffline = true\n\n` +
      '[slapos-node-configuration]\nipv4-random = 127.31.255.1\nipv6-random =\ninstance-title = bench\n');
    chownSync(part, NOBODY, NOBODY);
    chownSync(path.join(part, 'buildout.cfg'), NOBODY, NOBODY);
    const serverStarted = performance.now();
    const socket = await server.socket();
    const serverReadyMs = performance.now() - serverStarted;
    if (socket === undefined || server.pid === undefined) throw new Error('the buildout fork server did not start');
    const serverPid = server.pid;
    const FORKED = '__forked__';
    const run = (argv: string[]) => {
      const forked = argv[0] === FORKED;
      const cpu = childrenCpuMs() + (forked ? childrenCpuMs(serverPid) : 0);
      const started = performance.now();
      // Forked: the client runs as root (the server's peer check) and the child drops to nobody.
      const result = forked
        ? spawnSync(buildoutClientPath, ['--socket', socket, '--uid', String(NOBODY), '--gid', String(NOBODY), '--', ...argv.slice(1)], { cwd: part, encoding: 'utf8', env: { HOME: part, PYTHONNOUSERSITE: 'true' } })
        : spawnSync(argv[0]!, argv.slice(1), { cwd: part, uid: NOBODY, gid: NOBODY, encoding: 'utf8', env: { HOME: part, PYTHONNOUSERSITE: 'true' } });
      const wall = performance.now() - started;
      if (result.status !== 0) throw new Error(`${argv.join(' ')}: exit ${result.status}\n${result.stdout}${result.stderr}`);
      return { cpu: childrenCpuMs() + (forked ? childrenCpuMs(serverPid) : 0) - cpu, wall };
    };
    run([SYSTEM_PYTHON, BUILDOUT_LAUNCHER, '-U', '-c', 'buildout.cfg']); // installs the part
    // The launcher without its last lines (main): its imports and patches.
    const importsOnly = (launcher: string, name: string) => {
      const file = path.join(dir, name);
      writeFileSync(file, readFileSync(launcher, 'utf8').split("if __name__ == '__main__':")[0]!);
      chmodSync(file, 0o644);
      return file;
    };
    const stages: Array<[string, string[]]> = [
      ['interpreter, no site (python3 -S -c 0)', [SYSTEM_PYTHON, '-S', '-c', '0']],
      ['interpreter (python3 -c 0)', [SYSTEM_PYTHON, '-c', '0']],
      ['+ import pkg_resources', [SYSTEM_PYTHON, '-c', 'import pkg_resources']],
      ['+ import setuptools', [SYSTEM_PYTHON, '-c', 'import pkg_resources, setuptools']],
      ['+ setuptools.command.easy_install, package_index', [SYSTEM_PYTHON, '-c', 'import pkg_resources, setuptools, setuptools.command.easy_install, setuptools.package_index']],
      ['A: launcher imports and patches', [SYSTEM_PYTHON, importsOnly(BUILDOUT_LAUNCHER, 'a-imports.py')]],
      ['A: whole no-change run', [SYSTEM_PYTHON, BUILDOUT_LAUNCHER, '-U', '-c', 'buildout.cfg']],
      ['A forked by the fork server: whole no-change run', [FORKED, '-U', '-c', 'buildout.cfg']],
    ];
    if (launcherB) {
      stages.push(['B: launcher imports and patches', [SYSTEM_PYTHON, importsOnly(path.resolve(launcherB), 'b-imports.py')]]);
      stages.push(['B: whole no-change run', [SYSTEM_PYTHON, path.resolve(launcherB), '-U', '-c', 'buildout.cfg']]);
    }
    const results = new Map(stages.map(([name]) => [name, [] as Array<{ cpu: number; wall: number }>]));
    for (const [, argv] of stages) run(argv); // warm-up
    for (let i = 0; i < rounds; i++) for (const [name, argv] of stages) results.get(name)!.push(run(argv));
    for (const [name, r] of results) {
      console.log(`${name.padEnd(52)} CPU ${median(r.map((x) => x.cpu)).toFixed(0).padStart(4)} ms   wall ${median(r.map((x) => x.wall)).toFixed(0).padStart(5)} ms`);
    }
    console.log(`fork server start-up (once per pass): ${serverReadyMs.toFixed(0)} ms wall`);
    const execd = results.get('A: whole no-change run')!;
    const forked = results.get('A forked by the fork server: whole no-change run')!;
    console.log(`exec'd / forked (median of ${rounds} pairwise ratios): CPU ${median(forked.map((x, i) => execd[i]!.cpu / Math.max(1, x.cpu))).toFixed(2)}×, ` +
      `wall ${median(forked.map((x, i) => execd[i]!.wall / x.wall)).toFixed(2)}×; ${loadLine()}`);
    if (launcherB) {
      const a = results.get('A: whole no-change run')!;
      const b = results.get('B: whole no-change run')!;
      console.log(`whole run B / A (median of ${rounds} pairwise ratios): CPU ${median(a.map((x, i) => b[i]!.cpu / x.cpu)).toFixed(2)}×, wall ${median(a.map((x, i) => b[i]!.wall / x.wall)).toFixed(2)}×; ${loadLine()}`);
    }
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
