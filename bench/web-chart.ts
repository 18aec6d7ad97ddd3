// `npm run bench -- web-chart [points] [rounds]`: why uPlot draws the web
// view's plots. Headless Chromium renders the same series of N points (10,000
// by default) with uPlot and with Chart.js 4 (animation off, the usual
// fast-path options: no point markers, no parsing, decimation off), rounds
// alternating, and prints each one's median time to a drawn canvas and the
// ratio. Chart.js is a dev dependency for this comparison only.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { startChromium } from '../test/helpers/chromium.js';

const require = createRequire(import.meta.url);
const FILES: Record<string, string> = {
  '/uplot.js': require.resolve('uplot/dist/uPlot.iife.min.js'),
  '/uplot.css': require.resolve('uplot/dist/uPlot.min.css'),
  '/chart.js': path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'),
};

const PAGE = `<!doctype html><meta charset=utf-8><link rel=stylesheet href=/uplot.css>
<script src=/uplot.js></script><script src=/chart.js></script><div id=box style="width:900px"></div>
<script>
function series(n) { const t0 = 1.7e9, xs = new Array(n), ys = new Array(n); for (let i = 0; i < n; i++) { xs[i] = t0 + i * 60; ys[i] = 50 + 40 * Math.sin(i / 200) + (i * 7919 % 13); } return [xs, ys]; }
async function frame() { await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))); }
async function withUplot(n) {
  const box = document.getElementById('box'); box.replaceChildren(); const data = series(n); const t = performance.now();
  const u = new uPlot({ width: 900, height: 220, series: [{}, { stroke: 'blue' }] }, data, box); await frame();
  const ms = performance.now() - t; u.destroy(); return ms;
}
async function withChartjs(n) {
  const box = document.getElementById('box'); box.replaceChildren(); const canvas = document.createElement('canvas'); canvas.width = 900; canvas.height = 220; box.append(canvas);
  const [xs, ys] = series(n); const t = performance.now();
  const c = new Chart(canvas, { type: 'line', data: { labels: xs, datasets: [{ data: ys, borderColor: 'blue', pointRadius: 0, borderWidth: 1 }] },
    options: { animation: false, responsive: false, parsing: true, normalized: true, spanGaps: true, plugins: { legend: { display: false } }, scales: { x: { type: 'linear' } } } });
  await frame(); const ms = performance.now() - t; c.destroy(); return ms;
}
window.bench = async (n, rounds) => { const u = [], c = []; for (let i = 0; i < rounds; i++) { u.push(await withUplot(n)); c.push(await withChartjs(n)); }
  const median = (a) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]; return { uplot: median(u), chartjs: median(c) }; };
</script>`;

export async function main(args: string[]): Promise<void> {
  const points = Number(args[0] ?? 10_000);
  const rounds = Number(args[1] ?? 15);
  const server = http.createServer((req, res) => {
    const file = FILES[req.url ?? ''];
    if (file) res.writeHead(200, { 'content-type': file.endsWith('.css') ? 'text/css' : 'text/javascript' }).end(readFileSync(file));
    else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const cleanups: Array<() => unknown> = [];
  const t = { teardown: (fn: () => unknown) => cleanups.push(fn) } as never;
  try {
    const browser = await startChromium(t);
    const page = await browser.open(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, { width: 1000, height: 400 });
    await page.waitFor('typeof window.bench === "function"');
    const r = await page.evaluate<{ uplot: number; chartjs: number }>(`window.bench(${points}, ${rounds})`);
    const sizes = { uplot: readFileSync(FILES['/uplot.js'] as string).length, chartjs: readFileSync(FILES['/chart.js'] as string).length };
    process.stdout.write(`${points} points, median of ${rounds} rounds (headless Chromium, to the second animation frame):\n` +
      `  uPlot    ${r.uplot.toFixed(1)} ms  (${Math.round(sizes.uplot / 1024)} KiB minified)\n` +
      `  Chart.js ${r.chartjs.toFixed(1)} ms  (${Math.round(sizes.chartjs / 1024)} KiB minified)\n` +
      `  Chart.js / uPlot = ${(r.chartjs / r.uplot).toFixed(2)}\n`);
  } finally {
    for (const fn of cleanups.reverse()) await fn();
    server.close();
  }
}
