// Colour only on a terminal (never piped, never with NO_COLOR or TERM=dumb), the
// words unchanged; the per-partition usage lines of `slapos node status`.
import test from 'ava';
import { colourEnabled, colourStates } from '../../src/cli/colour.js';
import { formatUsageLines } from '../../src/cli/commands/status.js';

test('colour on a terminal only, and the words stay', (t) => {
  t.true(colourEnabled({ isTTY: true }, {}));
  t.false(colourEnabled({ isTTY: false }, {}));
  t.false(colourEnabled({ isTTY: true }, { NO_COLOR: '1' }));
  t.false(colourEnabled({ isTTY: true }, { TERM: 'dumb' }));
  const text = 'slappart0/check  FAILED  port closed\nslappart1/check  ok';
  t.is(colourStates(text, false), text);
  const coloured = colourStates(text, true);
  t.not(coloured, text);
  t.is(coloured.replace(/\x1b\[[0-9;]*m/g, ''), text, 'only escape codes are added');
});

test('node status: one usage line per partition from the latest sample', (t) => {
  t.regex(formatUsageLines([]), /no sample yet/);
  t.regex(formatUsageLines(null), /not readable/);
  const text = formatUsageLines([{ partition: 'slappart0', at: 0, cpuUsec: 12_500_000, memoryBytes: 300 * 2 ** 20, diskBytes: 3 * 2 ** 30, netTxBytes: 2 ** 20, netRxBytes: null }]);
  t.is(text.split('\n')[1], '  slappart0  cpu 12.5 s, memory 300 MiB, disk 3.0 GiB, network in 1 MiB / out ?  (1970-01-01 00:00:00 UTC)');
});
