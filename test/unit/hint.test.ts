import test from 'ava';
import { nextStepLine } from '../../src/cli/hint.js';

test('the next-step hint: one line on a terminal, none in a pipe or with --json, plain with NO_COLOR', (t) => {
  const tty = { isTTY: true };
  t.is(nextStepLine('slapos node software', { json: false, stream: tty, env: { NO_COLOR: '1' } }), 'next: slapos node software');
  const coloured = nextStepLine('slapos node software', { json: false, stream: tty, env: {} });
  t.true(coloured?.includes('next: slapos node software'));
  t.not(coloured, 'next: slapos node software', 'dim on a colour terminal');
  t.is(nextStepLine('x', { json: true, stream: tty, env: {} }), undefined);
  t.is(nextStepLine('x', { json: false, stream: { isTTY: false }, env: {} }), undefined);
  t.is(nextStepLine('x', { json: false, stream: {}, env: {} }), undefined);
});
