import test from 'ava';
import { BuildProgress, buildoutPart, PassProgress, fit, formatElapsed, ProgressLine, progressMode, renderBuild, renderPass } from '../../src/util/progress.js';
import { createLogger } from '../../src/util/log.js';

test('mode: a terminal rewrites a line, a pipe gets plain lines, --json none', (t) => {
  t.is(progressMode({ isTTY: true }, false, {}), 'tty');
  t.is(progressMode({ isTTY: true }, false, { TERM: 'dumb' }), 'plain');
  t.is(progressMode({}, false, {}), 'plain');
  t.is(progressMode({ isTTY: true }, true, {}), 'off');
});

test('elapsed time, buildout parts, fitting to the width', (t) => {
  t.is(formatElapsed(0), '0s');
  t.is(formatElapsed(65_400), '1m05s');
  t.is(formatElapsed(3_723_000), '1h02m03s');
  t.is(buildoutPart('Installing eggs.'), 'eggs');
  t.is(buildoutPart('  Updating template-cfg.'), 'template-cfg');
  t.is(buildoutPart('Uninstalling python3:bin.'), 'python3:bin');
  t.is(buildoutPart('Getting distribution for zc.buildout.'), undefined);
  t.is(fit('abcdef', 4), 'abc…');
  t.is(fit('ab\u001b[2Jc', 80), 'ab [2Jc', 'no escape sequence from a log reaches the terminal');
});

test('build and pass lines', (t) => {
  t.is(renderBuild({ release: 'https://lab/sr.cfg', elapsedMs: 65_000, part: 'eggs', lastLine: 'Getting distribution for x.\n' }, 200),
    'building https://lab/sr.cfg 1m05s, part eggs: Getting distribution for x.');
  t.is(renderBuild({ release: 'r', elapsedMs: 1000 }, 200), 'building r 1s');
  t.is(renderBuild({ release: 'r', elapsedMs: 1000, lastLine: 'x'.repeat(100) }, 30).length, 30);
  t.is(renderPass({ done: 3, total: 10, current: 'slappart3', elapsedMs: 12_000 }, 200), 'partitions 3/10 done, slappart3 (12s)');
});

test('writer: in place on a terminal, one line per change in a pipe, nothing when off', (t) => {
  const sink = (isTTY: boolean) => {
    const chunks: string[] = [];
    return { chunks, stream: { isTTY, columns: 40, write: (s: string) => chunks.push(s) } };
  };
  const tty = sink(true);
  const line = new ProgressLine(tty.stream, 'tty');
  t.is(line.columns, 39);
  line.update('a', 'k');
  line.update('b', 'k');
  line.done();
  t.deepEqual(tty.chunks, ['\r\u001b[Ka', '\r\u001b[Kb', '\r\u001b[K']);
  const pipe = sink(false);
  const plain = new ProgressLine(pipe.stream, 'plain');
  plain.update('part eggs 1s', 'eggs');
  plain.update('part eggs 2s', 'eggs');
  plain.update('part cfg 3s', 'cfg');
  plain.done();
  t.deepEqual(pipe.chunks, ['part eggs 1s\n', 'part cfg 3s\n']);
  const off = sink(true);
  new ProgressLine(off.stream, 'off').update('x', 'k');
  t.deepEqual(off.chunks, []);
});

test('a build: elapsed, part and last line; in a pipe one line per part, none per log line of the same part', (t) => {
  const chunks: string[] = [];
  let now = 1000;
  const build = new BuildProgress(new ProgressLine({ write: (s: string) => chunks.push(s) }, 'plain'), () => now);
  build.start('https://lab/sr.cfg');
  now += 5000;
  build.line('Installing eggs.');
  now += 60_000;
  build.line('Getting distribution for x.');
  build.line('Installing template.');
  build.end();
  t.deepEqual(chunks, [
    'building https://lab/sr.cfg 0s\n',
    'building https://lab/sr.cfg 5s, part eggs: Installing eggs.\n',
    'building https://lab/sr.cfg 1m05s, part template: Installing template.\n',
  ]);
});

test('an instance pass: partitions done out of total, a line per count in a pipe', (t) => {
  const chunks: string[] = [];
  let now = 0;
  const pass = new PassProgress(new ProgressLine({ write: (s: string) => chunks.push(s) }, 'plain'), () => now);
  pass.update(0, 2, 'slappart0');
  now = 3000;
  pass.update(1, 2);
  pass.update(1, 2, 'slappart1');
  pass.update(2, 2);
  pass.end();
  t.deepEqual(chunks, ['partitions 0/2 done, slappart0 (0s)\n', 'partitions 1/2 done (3s)\n', 'partitions 2/2 done (3s)\n']);
});

/** A fake terminal: applies what is written (\r, ESC[K, \n, text) to a screen of lines. */
function fakeTerminal() {
  const screen: string[] = [''];
  let column = 0;
  const raw: string[] = [];
  return {
    isTTY: true, columns: 80, raw, screen,
    write(text: string) {
      raw.push(text);
      for (let i = 0; i < text.length; i += 1) {
        const row = screen.length - 1;
        if (text.startsWith('\u001b[K', i)) { screen[row] = (screen[row] as string).slice(0, column); i += 2; }
        else if (text[i] === '\r') column = 0;
        else if (text[i] === '\n') { screen.push(''); column = 0; }
        else { const line = screen[row] as string; screen[row] = line.slice(0, column) + text[i] + line.slice(column + 1); column += 1; }
      }
      return true;
    },
  };
}

test('on a terminal, a log line written while a progress line is shown goes above it: cleared first, redrawn after', async (t) => {
  const tty = fakeTerminal();
  const log = createLogger({ stderr: tty as unknown as NodeJS.WritableStream });
  let now = 0;
  const pass = new PassProgress(new ProgressLine(tty, 'tty'), () => now);
  now = 2000;
  pass.update(1, 3, 'slappart1');
  log.info({ partition: 'slappart1' }, 'processed');
  log.warn({ code: 'X' }, 'a warning line long enough to have left bits of the progress line behind it if it were not cleared');
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(tty.screen, [
    'INFO  slappart1: processed',
    'WARN  a warning line long enough to have left bits of the progress line behind it if it were not cleared code=X',
    'partitions 1/3 done, slappart1 (2s)',
  ]);
  pass.update(2, 3);
  pass.end();
  log.info('after the pass');
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(tty.screen.slice(2), ['INFO  after the pass', ''], 'once ended, the progress line is gone and lines are plain');
  // One write per log line while the progress line shows: never a frame with the log line glued to the progress text.
  t.true(tty.raw.some((w) => w.startsWith('\r\u001b[KINFO  slappart1: processed\n') && w.endsWith('partitions 1/3 done, slappart1 (2s)')));
});

test('in a pipe, log lines and progress lines simply alternate', async (t) => {
  const out: string[] = [];
  const pipe = { isTTY: false, write: (s: string) => out.push(s) };
  const log = createLogger({ stderr: pipe as unknown as NodeJS.WritableStream });
  const pass = new PassProgress(new ProgressLine(pipe, 'plain'), () => 0);
  pass.update(0, 2);
  log.info('x');
  pass.update(1, 2);
  pass.end();
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(out, ['partitions 0/2 done (0s)\n', 'INFO  x\n', 'partitions 1/2 done (0s)\n']);
});
