// Shared by the ops tests: a logger that keeps its lines, the CLI inside a
// test namespace (with the host's cgroups visible, as test/helpers/format.ts),
// a strict Prometheus text checker.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/util/log.js';
import { inNetnsCommand } from '../helpers/format.js';
import { repoRoot } from '../helpers/system.js';

export function memoryLogger(verbose = false): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const stderr = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { log: createLogger({ stderr, verbose }), lines };
}

export interface Run {
  child: ChildProcess;
  done: Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** `slapos <args>` in network namespace `netns`, asynchronously. */
export function cliInNetns(netns: string, args: string[]): Run {
  const { command, args: argv, hold } = inNetnsCommand(netns, [process.execPath, path.join(repoRoot, 'bin', 'slapos.js'), ...args]);
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  return { child, done: collect(child, () => spawnSync('rmdir', [hold])) };
}

export function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Run {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin', 'slapos.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  return { child, done: collect(child) };
}

function collect(child: ChildProcess, after?: () => void): Run['done'] {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => {
    child.on('close', (status, signal) => {
      after?.();
      resolve({ status, signal, stdout, stderr });
    });
  });
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const LABELS = `\\{(?:[a-zA-Z_][a-zA-Z0-9_]*=${LABEL_VALUE}(?:,[a-zA-Z_][a-zA-Z0-9_]*=${LABEL_VALUE})*,?)?\\}`;
// Prometheus parses values with Go's strconv.ParseFloat, which takes Inf and
// NaN in any case (prom-client writes "Nan" for a lag not measured yet).
const VALUE = '(?:[+-]?(?:\\d+(?:\\.\\d*)?(?:[eE][+-]?\\d+)?|\\.\\d+(?:[eE][+-]?\\d+)?|[Ii][Nn][Ff]|[Nn][Aa][Nn]))';
const SAMPLE = new RegExp(`^(${NAME})(${LABELS})? ${VALUE}(?: -?\\d+)?$`);
const HELP = new RegExp(`^# HELP (${NAME}) .*$`);
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`);

/**
 * Checks Prometheus text exposition line by line; returns the problems found
 * (empty: valid). Every sample must belong to a family declared by # TYPE
 * before it (histogram/summary suffixes allowed), families are not repeated.
 */
export function prometheusProblems(text: string): string[] {
  const problems: string[] = [];
  const types = new Map<string, string>();
  if (!text.endsWith('\n')) problems.push('does not end with a newline');
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${line}`;
    if (line === '') return;
    let m: RegExpMatchArray | null;
    if ((m = line.match(TYPE))) {
      if (types.has(m[1] as string)) problems.push(`${where}: family declared twice`);
      types.set(m[1] as string, m[2] as string);
    } else if (line.match(HELP)) {
      // fine
    } else if (line.startsWith('#')) {
      problems.push(`${where}: unknown comment`);
    } else if ((m = line.match(SAMPLE))) {
      const name = m[1] as string;
      const family = [name, name.replace(/_(bucket|sum|count|total|created)$/, '')].find((n) => types.has(n));
      if (!family) problems.push(`${where}: sample without a # TYPE`);
      else if (types.get(family) === 'histogram' && name.endsWith('_bucket') && !/le="/.test(line)) problems.push(`${where}: bucket without le`);
    } else {
      problems.push(`${where}: not a valid sample`);
    }
  });
  if (types.size === 0) problems.push('no metric family');
  return problems;
}
