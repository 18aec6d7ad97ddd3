// `npm run bench -- portredir [--connections N] [--mib M]`: the portredir
// manager's mechanism, in-kernel nftables DNAT, against the reference's
// user-space forwarder (socat TCP4-LISTEN:…,fork TCP4:…, run by supervisord
// there; started by hand here), both as ratios to a direct connection
// measured in the same run, inside a network namespace made for the run.
// Two loads: short connections (connect, one answer, close: what a web
// front-end sees) and one bulk transfer.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { baseScript, redirectScript } from '../src/firewall/ruleset.js';
import { header, parseArgs } from './lib.js';

const NFT = '/usr/sbin/nft';

function sh(args: string[], input?: string): void {
  const r = spawnSync(args[0] as string, args.slice(1), { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
}

const SERVER = `require('net').createServer((s) => s.once('data', (d) => {
  if (d[0] === 66) { const chunk = Buffer.alloc(1 << 20, 7); let left = Number(d.toString().slice(1)); const more = () => { while (left > 0) { left--; if (!s.write(chunk)) return s.once('drain', more); } s.end(); }; more(); }
  else s.end('ok');
})).listen(7000, '10.79.0.2', () => console.log('up'));`;

const CLIENT = (host: string, port: number, connections: number, mib: number) => `
const net = require('net');
const one = () => new Promise((resolve, reject) => { const s = net.connect(${port}, '${host}', () => s.write('x')); s.on('data', () => {}); s.on('end', resolve); s.on('error', reject); });
(async () => {
  let t = process.hrtime.bigint();
  for (let i = 0; i < ${connections}; i++) await one();
  const conn = Number(process.hrtime.bigint() - t) / 1e6;
  t = process.hrtime.bigint();
  await new Promise((resolve, reject) => { const s = net.connect(${port}, '${host}', () => s.write('B${mib}')); let n = 0; s.on('data', (d) => { n += d.length; }); s.on('end', () => n === ${mib} << 20 ? resolve() : reject(new Error('short ' + n))); s.on('error', reject); });
  const bulk = Number(process.hrtime.bigint() - t) / 1e6;
  console.log(JSON.stringify({ conn, bulk }));
})().catch((e) => { console.error(e); process.exit(1); });`;

function client(ns: string, host: string, port: number, connections: number, mib: number): { conn: number; bulk: number } {
  const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENT(host, port, connections, mib)], { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`client: ${r.stderr}`);
  return JSON.parse(r.stdout) as { conn: number; bulk: number };
}

function started(child: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    child.stdout?.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`exited ${code}`)));
  });
}

export async function main(args: string[]): Promise<void> {
  const { opts } = parseArgs(args);
  const connections = Number(opts.get('connections') ?? 500);
  const mib = Number(opts.get('mib') ?? 512);
  const rounds = Number(opts.get('rounds') ?? 3);
  header('portredir benchmark: nftables DNAT vs socat, ratios to a direct connection');
  const ns = `sltbench${randomBytes(3).toString('hex')}`;
  sh(['ip', 'netns', 'add', ns]);
  const children: ChildProcess[] = [];
  try {
    sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    for (const a of ['10.79.0.1', '10.79.0.2']) sh(['ip', '-n', ns, 'addr', 'add', `${a}/32`, 'dev', 'lo']);
    const server = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(server);
    await started(server);
    sh(['ip', 'netns', 'exec', ns, NFT, '-f', '-'], baseScript() + redirectScript('bench', [{ protocol: 'tcp', srcPort: 18000, srcAddress: '10.79.0.1', destAddress: '10.79.0.2', destPort: 7000 }], []));
    const socat = spawn('ip', ['netns', 'exec', ns, 'socat', 'TCP4-LISTEN:19000,bind=10.79.0.1,fork,reuseaddr', 'TCP4:10.79.0.2:7000'], { stdio: 'ignore' });
    children.push(socat);
    await new Promise((r) => setTimeout(r, 300));
    const ratios = { nft: { conn: [] as number[], bulk: [] as number[] }, socat: { conn: [] as number[], bulk: [] as number[] } };
    for (let i = 0; i < rounds; i++) {
      const direct = client(ns, '10.79.0.2', 7000, connections, mib);
      const nft = client(ns, '10.79.0.1', 18000, connections, mib);
      const viaSocat = client(ns, '10.79.0.1', 19000, connections, mib);
      console.log(`round ${i + 1}: direct ${direct.conn.toFixed(0)} ms / ${direct.bulk.toFixed(0)} ms, nft ${nft.conn.toFixed(0)} / ${nft.bulk.toFixed(0)}, socat ${viaSocat.conn.toFixed(0)} / ${viaSocat.bulk.toFixed(0)} (${connections} connections / ${mib} MiB)`);
      ratios.nft.conn.push(nft.conn / direct.conn);
      ratios.nft.bulk.push(nft.bulk / direct.bulk);
      ratios.socat.conn.push(viaSocat.conn / direct.conn);
      ratios.socat.bulk.push(viaSocat.bulk / direct.bulk);
    }
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] as number;
    console.log(`time as a ratio to direct (median of ${rounds}): nft DNAT ${median(ratios.nft.conn).toFixed(2)}× for short connections, ${median(ratios.nft.bulk).toFixed(2)}× bulk; ` +
      `socat ${median(ratios.socat.conn).toFixed(2)}× short, ${median(ratios.socat.bulk).toFixed(2)}× bulk`);
  } finally {
    for (const c of children) c.kill('SIGKILL');
    spawnSync('ip', ['netns', 'del', ns]);
  }
}
