// The buildout fork server of one instance pass (lib/buildout-server.py,
// docs/performance.md "Fork server"): started on first use, as root, with the
// interpreter's start-up environment of a plain run; each instance buildout of
// the pass is then a fork of it (runAs with `forkServer`) instead of a new
// Python importing setuptools again. Closed at the end of the pass: the
// server finishes the runs in hand and exits; it also dies with the node
// (PR_SET_PDEATHSIG) and when its stdin closes.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../util/log.js';

/** lib/buildout-server.py of this package (dist/src/executor → repository root). */
export const BUILDOUT_SERVER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'lib', 'buildout-server.py');

/** Debian's interpreter, as for the plain path's launcher. */
const SYSTEM_PYTHON = '/usr/bin/python3';
/** What the plain path's interpreter starts with that changes how Python starts (locale, user site): the same. */
export const SERVER_ENV: Readonly<Record<string, string>> = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', PYTHONNOUSERSITE: 'true' };
const READY_TIMEOUT_MS = 60_000;

export class BuildoutForkServer {
  private starting: Promise<string | undefined> | undefined;
  private child: ChildProcess | undefined;
  private dir: string | undefined;
  private failed = false;
  private removeAtExit: (() => void) | undefined;

  constructor(private readonly log: Logger, private readonly script = BUILDOUT_SERVER) {}

  /** The server's pid once started (benchmarks read its reaped children's CPU time). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Only root forks children as other users; elsewhere every run is exec'd. */
  static usable(): boolean {
    return process.getuid?.() === 0;
  }

  /** The server's socket, starting it on first use; undefined when it cannot run (the caller execs instead). */
  socket(): Promise<string | undefined> {
    if (this.failed || !BuildoutForkServer.usable()) return Promise.resolve(undefined);
    this.starting ??= this.start().catch((error: unknown) => {
      this.failed = true;
      this.log.warn({ code: 'BUILDOUT_SERVER_FAILED', err: error }, 'buildout fork server not started; buildouts are exec\'d');
      void this.close();
      return undefined;
    });
    return this.starting;
  }

  private start(): Promise<string> {
    // A directory only root enters: the socket is the way to root-forked children.
    const dir = mkdtempSync(path.join(tmpdir(), 'slapos-buildout-server-'));
    this.dir = dir;
    // A node that exits without closing the pass (process.exit, a fatal error) leaves no socket behind.
    this.removeAtExit = () => rmSync(dir, { recursive: true, force: true });
    process.once('exit', this.removeAtExit);
    const socket = path.join(dir, 'socket');
    const started = performance.now();
    const child = spawn(SYSTEM_PYTHON, [this.script, socket], { cwd: '/', env: { ...SERVER_ENV }, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-8192);
    });
    child.stdin.on('error', () => undefined); // already gone: close() is then a no-op
    return new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`buildout fork server not ready after ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS);
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
        if (out.includes('ready\n')) {
          clearTimeout(timer);
          this.log.debug({ pid: child.pid, duration_ms: Math.round(performance.now() - started) }, 'buildout fork server ready');
          resolve(socket);
        }
      });
      child.on('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (this.child === child) {
          // Not closed by us: the rest of the pass execs its buildouts.
          this.failed = true;
          this.log.warn({ code: 'BUILDOUT_SERVER_EXITED', exit_code: code, signal }, 'buildout fork server exited; buildouts are exec\'d');
        }
        if (stderr.trim() !== '') this.log.warn({ code: 'BUILDOUT_SERVER_OUTPUT', exit_code: code, signal, output: stderr.trim() }, 'buildout fork server wrote to stderr');
        reject(new Error(`buildout fork server exited (${signal ?? code}): ${stderr.trim()}`));
      });
    });
  }

  /** Ends the server once the runs in hand are over; removes its socket. */
  async close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.stdin?.end();
      await exited;
    }
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
    if (this.removeAtExit) process.removeListener('exit', this.removeAtExit);
    this.removeAtExit = undefined;
    if (!this.failed) this.starting = undefined; // a later use starts a new one
  }
}
