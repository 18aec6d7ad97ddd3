import test from 'ava';
import { execFileSync } from 'node:child_process';
import { IniError, parseIni, sectionValues } from '../../src/config/ini.js';

// A trimmed real slapos.cfg: continuation lines, `key: value`, comments,
// DEFAULT, interpolation, blank lines inside a value.
const SAMPLE = `# comment
; other comment
[DEFAULT]
base = /srv

[slapos]
computer_id = COMP-1234
master_url: http://127.0.0.1:8080
instance_root = %(base)s/slapgrid
Software_Root = /opt/slapgrid
percent = 100%%
signature-certificate-list =
  -----BEGIN CERTIFICATE-----
  MIIB...

  -----END CERTIFICATE-----
    # an indented comment is dropped
empty =

[slapformat]
partition_amount = 10
   # indented comment line
interface_name = br0
`;

/** What Python's configparser.ConfigParser makes of the same text. */
function pythonReading(text: string): Record<string, Record<string, string>> {
  const script = `
import configparser, json, sys
p = configparser.ConfigParser()
p.read_string(sys.stdin.read())
print(json.dumps({s: {k: p.get(s, k) for k in p.options(s)} for s in p.sections()}))`;
  // stderr is captured: the refusals below are expected, their tracebacks are not test output.
  return JSON.parse(execFileSync('python3', ['-c', script], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] })) as Record<string, Record<string, string>>;
}

test('reads slapos.cfg exactly as Python configparser does', (t) => {
  const doc = parseIni(SAMPLE, 'sample.cfg');
  const ours: Record<string, Record<string, string>> = {};
  for (const name of doc.sections.keys()) ours[name] = Object.fromEntries(sectionValues(doc, name) ?? []);
  t.deepEqual(ours, pythonReading(SAMPLE));
  t.is(ours.slapos?.['signature-certificate-list'], '\n-----BEGIN CERTIFICATE-----\nMIIB...\n\n-----END CERTIFICATE-----');
  t.is(ours.slapos?.instance_root, '/srv/slapgrid');
  t.is(ours.slapos?.software_root, '/opt/slapgrid');
  t.is(ours.slapos?.percent, '100%');
});

const bad: [string, string, RegExp][] = [
  ['key outside a section', 'a = 1\n', /bad\.cfg:1: line outside any \[section\]/],
  ['a line without delimiter', '[s]\njust words\n', /bad\.cfg:2: expected "key = value" in \[s\]/],
  ['duplicate section', '[s]\n[s]\n', /bad\.cfg:2: section \[s\] appears twice/],
  ['duplicate key', '[s]\na = 1\nA = 2\n', /bad\.cfg:3: key "a" appears twice in \[s\]/],
];
for (const [what, text, message] of bad) {
  test(`rejects ${what}, naming file and line, like configparser`, (t) => {
    const error = t.throws(() => parseIni(text, 'bad.cfg'), { instanceOf: IniError });
    t.regex(error?.message ?? '', message);
    const refused = t.throws(() => pythonReading(text), undefined, 'configparser refuses it too') as (Error & { stderr?: string }) | undefined;
    t.regex(String(refused?.stderr ?? ''), /configparser\.\w*Error/, 'with a configparser error, not a crash of the script');
  });
}

test('interpolation errors name the section and the key', (t) => {
  const missing = parseIni('[s]\na = %(nope)s\n', 'x.cfg');
  t.throws(() => sectionValues(missing, 's'), { message: /\[s\] a: refers to %\(nope\)s/ });
  const lone = parseIni('[s]\na = 5%\n', 'x.cfg');
  t.throws(() => sectionValues(lone, 's'), { message: /\[s\] a: "%" must be followed/ });
  const loop = parseIni('[s]\na = %(b)s\nb = %(a)s\n', 'x.cfg');
  t.throws(() => sectionValues(loop, 's'), { message: /deeper than 10 levels/ });
});

test('CRLF files and keys with spaces around the delimiter', (t) => {
  const doc = parseIni('[s]\r\n  key   =   value with = sign  \r\n', 'crlf.cfg');
  t.deepEqual(Object.fromEntries(sectionValues(doc, 's') ?? []), { key: 'value with = sign' });
});
