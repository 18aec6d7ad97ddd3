// The master's web view: fleet, instance trees, usage plots. Plain browser
// JavaScript, shipped as is (no build step, nothing fetched from elsewhere);
// data from this master's JSON API (/api/…), plots by uPlot. The URL's query
// holds the view, scope and range, so a link shows the same page. Every value
// is set as text (never parsed as HTML). States are words first, colours second.
'use strict';

const RANGES = ['hour', 'day', 'week', 'month', 'year'];
const RESOURCES = ['cpu', 'memory', 'disk', 'network_in', 'network_out'];
const main = document.getElementById('main');
const plots = [];

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'onclick') el.addEventListener('click', v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const params = () => new URLSearchParams(location.search);
function href(changes) {
  const p = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === null || v === '') p.delete(k);
    else p.set(k, v);
  }
  return `?${p.toString()}`;
}
/** An in-page link: keeps the URL shareable, loads without a full reload. */
function link(text, changes, attrs) {
  const url = href(changes);
  return h('a', { href: url, ...attrs, onclick: (e) => { if (e.ctrlKey || e.metaKey || e.shiftKey) return; e.preventDefault(); history.pushState(null, '', url); render(); } }, text);
}

function when(seconds) {
  if (seconds === null || seconds === undefined) return 'never';
  const ago = Date.now() / 1000 - seconds;
  const iso = new Date(seconds * 1000).toISOString().replace('T', ' ').slice(0, 19);
  const rel = ago < 90 ? `${Math.max(0, Math.round(ago))} s ago` : ago < 5400 ? `${Math.round(ago / 60)} min ago`
    : ago < 172800 ? `${Math.round(ago / 3600)} h ago` : `${Math.round(ago / 86400)} days ago`;
  return h('time', { datetime: new Date(seconds * 1000).toISOString(), title: `${iso} UTC` }, rel);
}

/** A state as a word with a symbol; the colour is a hint only. */
const STATES = {
  ok: ['✔', 'ok'], failing: ['✖', 'bad'], error: ['✖', 'bad'], unknown: ['?', 'unknown'], free: ['○', 'unknown'],
  available: ['✔', 'ok'], building: ['…', 'busy'], started: ['▶', 'ok'], stopped: ['■', 'unknown'], destroyed: ['✖', 'unknown'],
  busy: ['●', 'ok'], never: ['?', 'unknown'],
};
function state(word) {
  const [symbol, tone] = STATES[word] || ['·', 'unknown'];
  return h('span', { class: `state ${tone}` }, `${symbol} ${word}`);
}

async function api(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

function table(head, rows, attrs) {
  return h('div', { class: 'scroll' }, h('table', attrs || {}, h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))))));
}

// ---- fleet ----

function bytes(n) {
  if (n === null || n === undefined) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}
const percent = (part, whole) => (whole ? `${Math.round((part / whole) * 100)} %` : '?');

/** The node's hardware status as its collect saw it (sent with its usage by `slapos node report`). */
function hardwareSection(hw, viewer) {
  if (!hw && /^partition /.test(viewer || '')) return h('p', { class: 'muted hardware' }, 'A partition sees its own partition only, not its host\'s hardware status.');
  if (!hw) return h('p', { class: 'muted hardware' }, 'No hardware status reported (the node sends it with its usage, after `slapos node collect`).');
  const m = hw.memory;
  const uptime = hw.uptime_seconds >= 86400 ? `${Math.floor(hw.uptime_seconds / 86400)} days` : `${Math.round(hw.uptime_seconds / 3600)} h`;
  const temperature = hw.temperature && hw.temperature.main_celsius !== null ? ` · ${hw.temperature.main_celsius} °C` : '';
  return h('div', { class: 'hardware' },
    h('p', {}, `Host ${hw.hostname}, Linux ${hw.kernel}, up ${uptime}; read `, when(Date.parse(hw.generated_at) / 1000), '.'),
    table(['', 'As the node saw it'], [
      ['CPU', `${hw.cpu.cores} core(s)${hw.cpu.model ? `, ${hw.cpu.model}` : ''}; load ${hw.cpu.load_average.map((l) => l.toFixed(2)).join(' ')}${temperature}`],
      ['Memory', `${bytes(m.used_bytes)} used of ${bytes(m.total_bytes)} (${percent(m.used_bytes, m.total_bytes)}), ${bytes(m.available_bytes)} available` +
        (m.swap_total_bytes ? `; swap ${bytes(m.swap_used_bytes)} of ${bytes(m.swap_total_bytes)}` : '')],
      ['Partitions', `${hw.partitions.active} of ${hw.partitions.count} running processes`],
    ], { class: 'hw' }),
    hw.disks.length === 0 ? h('p', { class: 'muted' }, 'No disk reported.')
      : table(['Mount', 'Filesystem', 'Type', 'Used', 'Size', 'Use'], hw.disks.map((d) => [
        h('code', {}, d.mount), d.filesystem, d.type, bytes(d.used_bytes), bytes(d.size_bytes), percent(d.used_bytes, d.size_bytes),
      ]), { class: 'numbers disks' }));
}

function computerCard(c, viewer) {
  const busyShare = c.partitions_free + c.partitions_busy ? c.partitions_busy / (c.partitions_free + c.partitions_busy) : 0;
  const software = c.software.length === 0 ? h('p', { class: 'muted' }, 'No software release supplied.')
    : table(['Software release', 'Requested', 'Reported', 'Since'], c.software.map((s) => [
      h('code', { class: 'url' }, s.url), s.requested_state,
      [state(s.reported_state || 'never'), s.error_log ? h('details', {}, h('summary', {}, 'error log'), h('pre', { class: 'log' }, s.error_log)) : null],
      when(s.reported_at),
    ]));
  const busy = c.partitions.filter((p) => p.state === 'busy');
  const partitions = busy.length === 0 ? h('p', { class: 'muted' }, 'No allocated partition.')
    : table(['Partition', 'Instance', 'Requested', 'Reported', 'Health', 'Promises', ''], busy.map((p) => [
      h('code', {}, p.partition), p.title, p.requested_state, [state(p.reported_state || 'never'), ' ', when(p.reported_at)],
      [state(p.health), p.error_log ? h('details', {}, h('summary', {}, 'error'), h('pre', { class: 'log' }, p.error_log)) : null],
      p.promises.length === 0 ? h('span', { class: 'muted' }, 'none reported')
        : `${p.promises.filter((x) => x.status === 'ok').length}/${p.promises.length} pass`,
      link('usage', { view: 'usage', scope: `partition:${c.computer}/${p.partition}` }),
    ]));
  return h('section', { class: 'card', 'data-computer': c.computer },
    h('h2', {}, 'Computer ', h('code', {}, c.computer), ' ', h('span', { class: 'muted' }, c.address || '')),
    h('p', {}, 'Last contact: ', when(c.last_contact), ' · ',
      `${c.partitions_busy} busy, ${c.partitions_free} free partitions · `,
      `${c.health.ok} ok, ${c.health.failing} failing, ${c.health.unknown} not reported · `,
      link('usage', { view: 'usage', scope: `computer:${c.computer}` })),
    h('div', { class: 'bar', role: 'img', 'aria-label': `${Math.round(busyShare * 100)} % of partitions busy` },
      h('span', { class: 'fill', style: undefined, 'data-share': String(Math.round(busyShare * 100)) })),
    h('h3', {}, 'Partitions'), partitions, h('h3', {}, 'Software releases'), software, h('h3', {}, 'Hardware'), hardwareSection(c.hardware, viewer));
}

async function fleetView() {
  const data = await api('/api/fleet');
  const all = data.computers.flatMap((c) => c.partitions);
  const failing = all.filter((p) => p.health === 'failing');
  const summary = h('p', { class: 'summary' },
    `${data.computers.length} computer(s), ${all.filter((p) => p.state === 'busy').length} busy and ${all.filter((p) => p.state === 'free').length} free partition(s); `,
    failing.length ? state('failing') : state('ok'), failing.length ? ` ${failing.length} failing: ${failing.map((p) => p.title).join(', ')}` : ' nothing failing');
  const out = [h('h2', { class: 'page' }, 'Fleet'), summary];
  if (data.computers.length === 0) out.push(h('p', {}, 'No computer registered yet: run `slapos node format` on a node.'));
  out.push(...data.computers.map((c) => computerCard(c, data.viewer)));
  return out;
}

// ---- instances ----

function paramTable(values, what) {
  const entries = Object.entries(values);
  if (entries.length === 0) return h('p', { class: 'muted' }, `No ${what}.`);
  return table(['Name', 'Value'], entries.map(([k, v]) => [h('code', {}, k), h('code', { class: 'value' }, v)]));
}

function instanceNode(i) {
  const promises = i.promises.length === 0 ? h('p', { class: 'muted' }, 'No promise result reported.')
    : table(['Promise', 'Status', 'Since', 'Message'], i.promises.map((p) => [
      p.name, state(p.status === 'ok' ? 'ok' : 'failing'), p.failing_since ? ['failing since ', when(p.failing_since)] : ['checked ', when(p.checked_at)], p.message,
    ]));
  return h('li', { 'data-instance': i.title },
    h('details', { open: true },
      h('summary', {}, h('strong', {}, i.title), ' ', state(i.health), ' requested ', i.requested_state, ', reported ', i.reported_state || 'nothing', ' · ',
        h('code', {}, `${i.computer}/${i.partition}`)),
      h('div', { class: 'instance' },
        h('p', {}, 'Software: ', h('code', { class: 'url' }, i.software_release || ''), ` (${i.software_type || 'default'}) · `,
          link('usage', { view: 'usage', scope: `instance:${i.root}` === `instance:${i.title}` ? `instance:${i.title}` : `partition:${i.computer}/${i.partition}` })),
        i.error_log ? h('pre', { class: 'log' }, i.error_log) : null,
        h('div', { class: 'two' },
          h('div', {}, h('h4', {}, 'Parameters'), paramTable(i.parameters, 'parameters')),
          h('div', {}, h('h4', {}, 'Connection parameters'), paramTable(i.connection_parameters, 'connection parameters'))),
        h('h4', {}, 'Promises'), promises,
        i.shared.length ? [h('h4', {}, 'Shared instances hosted'), table(['Title', 'Type', 'Parameters'], i.shared.map((s) => [s.title, s.software_type || '', Object.keys(s.parameters).join(', ')]))] : null,
        i.children.length ? h('ul', { class: 'tree' }, i.children.map(instanceNode)) : null)));
}

async function instancesView() {
  const reveal = params().get('secrets') === '1';
  const data = await api(`/api/instances${reveal ? '?secrets=1' : ''}`);
  const toggle = reveal ? link('hide secrets', { secrets: null }) : link('show secrets', { secrets: '1' });
  const note = data.secrets ? 'Secrets shown.' : reveal ? 'Secrets stay masked for you (no client certificate).' : 'Secret-looking values are masked (••••••).';
  return [h('h2', { class: 'page' }, 'Instances'), h('p', {}, `${data.instances.length} instance tree(s). ${note} `, toggle),
    data.instances.length ? h('ul', { class: 'tree' }, data.instances.map(instanceNode)) : h('p', {}, 'No instance requested yet: `slapos request`.')];
}

// ---- usage ----

const fmt = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(1) : v.toFixed(3));

function plot(series, container) {
  const width = Math.max(260, container.clientWidth || 600);
  const opts = {
    width, height: 220, legend: { show: true },
    // From 0 (usage is never negative); a flat series (one point, all zeros) still gets a readable axis.
    scales: { x: { time: true, range: [series.from, series.to] }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
    // Tick labels keep small values readable (uPlot's default shows 0.0002 as "0").
    axes: [{}, { label: series.unit, size: 60, values: (u, splits) => splits.map((v) => (v === 0 ? '0' : Math.abs(v) < 0.01 ? v.toExponential(1).replace('.0e', 'e') : String(Number(v.toPrecision(3))))) }],
    series: [{}, { label: `${series.label} (${series.unit}${series.kind === 'counter' ? ' per bucket' : ', mean'})`, stroke: '#2a6fb0', fill: 'rgba(42,111,176,0.12)', width: 1.5 }],
  };
  const u = new uPlot(opts, [series.times, series.values], container);
  plots.push({ u, container });
}

async function usageView() {
  const p = params();
  const scope = p.get('scope') || 'fleet';
  const range = RANGES.includes(p.get('range')) ? p.get('range') : 'day';
  const fleet = await api('/api/fleet');
  const data = await api(`/api/usage?scope=${encodeURIComponent(scope)}&range=${range}&resource=${RESOURCES.join(',')}`);
  const scopes = [['the whole fleet', 'fleet'], ...fleet.computers.map((c) => [`computer ${c.computer}`, `computer:${c.computer}`]),
    ...fleet.computers.flatMap((c) => c.partitions.filter((x) => x.state === 'busy' && x.root === x.title).map((x) => [`instance ${x.title}`, `instance:${x.title}`])),
    ...fleet.computers.flatMap((c) => c.partitions.filter((x) => x.state === 'busy').map((x) => [`partition ${c.computer}/${x.partition} (${x.title})`, `partition:${c.computer}/${x.partition}`]))];
  const picker = h('select', { id: 'scope', 'aria-label': 'scope' }, scopes.map(([label, value]) => h('option', { value, selected: value === scope }, label)));
  picker.addEventListener('change', () => { history.pushState(null, '', href({ scope: picker.value })); render(); });
  const ranges = h('nav', { class: 'ranges', 'aria-label': 'range' }, RANGES.map((r) => (r === range ? h('strong', { 'aria-current': 'true' }, r) : link(r, { range: r }))));
  const out = [h('h2', { class: 'page' }, 'Usage'), h('div', { class: 'controls' }, h('label', { for: 'scope' }, 'Scope '), picker, ' Range: ', ranges),
    h('p', { class: 'muted' }, `Kept: every report for ${data.retention_days.raw} days, hourly for ${data.retention_days.hourly} days, daily for ${data.retention_days.daily} days. `,
      `This range plots ${range === 'hour' || range === 'day' ? 'every report' : range === 'year' ? 'daily' : 'hourly'} points.`)];
  const pending = [];
  for (const s of data.series) {
    const box = h('div', { class: 'plot', 'data-resource': s.name });
    const rows = s.parts.map((x) => [h('code', {}, `${x.computer}/${x.partition}`), fmt(x.mean), fmt(x.max), s.kind === 'counter' ? fmt(x.total) : '']);
    const empty = s.times.length === 0;
    out.push(h('section', { class: 'usage card' },
      h('h3', {}, `${s.label} (${s.unit})`),
      h('div', { class: 'pair' },
        empty ? h('p', { class: 'muted plot-empty' }, 'No data in this range.') : box,
        table(['Partition', s.kind === 'counter' ? 'Mean per bucket' : 'Mean', 'Max', s.kind === 'counter' ? 'Total' : ''], rows, { class: 'numbers' }))));
    if (!empty) pending.push([s, box]);
  }
  return { nodes: out, after: () => pending.forEach(([s, box]) => plot(s, box)) };
}

// ---- frame ----

async function render() {
  const view = ['fleet', 'instances', 'usage'].includes(params().get('view')) ? params().get('view') : 'fleet';
  for (const a of document.querySelectorAll('nav a[data-view]')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    a.onclick = (e) => { e.preventDefault(); history.pushState(null, '', `?view=${a.dataset.view}${a.dataset.view === 'usage' && params().get('range') ? `&range=${params().get('range')}` : ''}`); render(); };
  }
  document.title = `SlapOS master: ${view}`;
  const started = performance.now();
  try {
    const result = await (view === 'fleet' ? fleetView() : view === 'instances' ? instancesView() : usageView());
    plots.splice(0).forEach((p) => p.u.destroy());
    main.replaceChildren(...(Array.isArray(result) ? result : result.nodes));
    for (const bar of main.querySelectorAll('.bar .fill')) bar.style.width = `${bar.dataset.share}%`;
    if (!Array.isArray(result)) result.after();
    main.dataset.ready = view;
    document.getElementById('footer').textContent = `Rendered in ${Math.round(performance.now() - started)} ms.`;
    document.body.dataset.renderMs = String(Math.round(performance.now() - started));
  } catch (error) {
    main.replaceChildren(h('p', { class: 'state bad', role: 'alert' }, `✖ ${error.message}`));
    main.dataset.ready = 'error';
  }
}

let resizeTimer;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => plots.forEach((p) => p.u.setSize({ width: Math.max(260, p.container.clientWidth), height: 220 })), 100);
});
window.addEventListener('popstate', render);
render();
