// XML-RPC encoding and decoding, without a server.
import test from 'ava';
import { decodeResponse, encodeCall, XmlRpcFault, XmlRpcTransportError } from '../../src/supervisor/xmlrpc.js';
import { supervisordConfig, supervisordPaths } from '../../src/supervisor/config.js';
import { formatProcessesStatus } from '../../src/supervisor/status.js';

test('a call encodes strings (escaped), booleans, ints, arrays and structs', (t) => {
  t.is(
    encodeCall('supervisor.startProcessGroup', ['a<&>b', true, 3, [1.5], { k: 'v' }]),
    '<?xml version="1.0"?>\n<methodCall><methodName>supervisor.startProcessGroup</methodName><params>' +
      '<param><value><string>a&lt;&amp;&gt;b</string></value></param>' +
      '<param><value><boolean>1</boolean></value></param>' +
      '<param><value><int>3</int></value></param>' +
      '<param><value><array><data><value><double>1.5</double></value></data></array></value></param>' +
      '<param><value><struct><member><name>k</name><value><string>v</string></value></member></struct></value></param>' +
      '</params></methodCall>',
  );
});

test('responses decode nested arrays and structs, untyped strings and empty values', (t) => {
  const xml = `<?xml version='1.0'?>
<methodResponse><params><param><value><array><data>
<value><struct>
<member><name>name</name><value><string>p1</string></value></member>
<member><name>pid</name><value><int>42</int></value></member>
<member><name>ok</name><value><boolean>1</boolean></value></member>
<member><name>bare</name><value>text &amp; more</value></member>
<member><name>empty</name><value><string></string></value></member>
<member><name>list</name><value><array><data><value><array><data><value>a</value></data></array></value></data></array></value></member>
</struct></value>
</data></array></value></param></params></methodResponse>`;
  t.deepEqual(decodeResponse(xml), [{ name: 'p1', pid: 42, ok: true, bare: 'text & more', empty: '', list: [['a']] }]);
});

test('a fault becomes XmlRpcFault; garbage a transport error', (t) => {
  const xml = `<?xml version='1.0'?><methodResponse><fault><value><struct>
<member><name>faultCode</name><value><int>10</int></value></member>
<member><name>faultString</name><value><string>BAD_NAME: nope</string></value></member>
</struct></value></fault></methodResponse>`;
  const fault = t.throws(() => decodeResponse(xml), { instanceOf: XmlRpcFault });
  t.is(fault?.faultCode, 10);
  t.is(fault?.faultString, 'BAD_NAME: nope');
  t.throws(() => decodeResponse('<methodResponse><params>'), { instanceOf: XmlRpcTransportError });
});

test('supervisord.conf: socket, include, logs and pid under the instance root; legacy socket', (t) => {
  const paths = supervisordPaths('/srv/slapgrid', false);
  t.is(paths.socket, '/srv/slapgrid/sv.sock');
  t.is(supervisordPaths('/srv/slapgrid', true).socket, '/srv/slapgrid/supervisord.socket');
  const text = supervisordConfig(paths);
  for (const line of [
    'files = /srv/slapgrid/etc/supervisord.conf.d/*.conf',
    'serverurl = unix:///srv/slapgrid/sv.sock',
    'file = /srv/slapgrid/sv.sock',
    'chmod = 0700',
    'logfile = /srv/slapgrid/var/log/supervisord.log',
    'pidfile = /srv/slapgrid/var/run/supervisord.pid',
    'supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface',
  ]) {
    t.true(text.includes(`${line}\n`), line);
  }
  t.false(text.includes('eventlistener'));
  t.regex(supervisordConfig(paths, { watchdogCommand: '/opt/w' }), /\[eventlistener:watchdog\]\ncommand = \/opt\/w\nevents = PROCESS_STATE_EXITED, PROCESS_STATE_FATAL\n/);
});

test('status text', (t) => {
  t.regex(formatProcessesStatus({ supervisord: { running: false, socket: '/s' }, processes: [] }), /not running/);
  t.is(
    formatProcessesStatus({
      supervisord: { running: true, socket: '/s', pid: 7 },
      processes: [{ group: 'slappart0', name: 'web', state: 'RUNNING', pid: 9, description: 'pid 9, uptime 0:00:01' }],
    }),
    'supervisord: running, pid 7 (/s)\n  slappart0:web  RUNNING   pid 9, uptime 0:00:01',
  );
});
