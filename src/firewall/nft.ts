// Runs nft: one script, one transaction (`nft -f -` applies a whole script
// atomically or not at all). nft is an operator tool: it is given rule text
// on stdin, never a path, let alone one inside a partition tree.
import { spawn } from 'node:child_process';

export class NftError extends Error {
  constructor(message: string, readonly script: string) {
    super(message);
    this.name = 'NftError';
  }
}

export interface Nft {
  /** argv prefix of nft ([firewall] nft_cmd; tests put `ip netns exec <ns> nft`). */
  readonly command: readonly string[];
  apply(script: string): Promise<void>;
  list(): Promise<string>;
}

function run(command: readonly string[], args: string[], input: string, timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const [file, ...pre] = command;
    if (!file) return reject(new Error('empty nft command'));
    const child = spawn(file, [...pre, ...args], { stdio: ['pipe', 'pipe', 'pipe'], timeout: timeoutMs, env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { if (out.length < 1 << 22) out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { if (err.length < 1 << 16) err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.end(input);
  });
}

export function nft(command: readonly string[] = ['nft'], timeoutMs = 30_000): Nft {
  return {
    command,
    async apply(script: string): Promise<void> {
      const { code, err } = await run(command, ['-f', '-'], script, timeoutMs);
      if (code !== 0) throw new NftError(`nft refused the transaction (nothing applied): ${err.trim().split('\n').slice(0, 6).join('; ')}`, script);
    },
    async list(): Promise<string> {
      const { code, out, err } = await run(command, ['list', 'table', 'inet', 'slapos'], '', timeoutMs);
      if (code !== 0) {
        if (/No such file or directory/.test(err)) return '';
        throw new NftError(`nft list failed: ${err.trim()}`, '');
      }
      return out;
    },
  };
}
