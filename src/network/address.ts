// IPv4/IPv6 address primitives shared by format (addressing.ts) and the
// netlink codec: text <-> number (IPv6 as BigInt, RFC 5952 text as Python's
// ipaddress writes it) and number <-> bytes. Pure.
//
// Kept by hand rather than ip6addr (the design card's package): its offset()
// accepts only +-4,294,967,295, so the /80 partition ranges (offsets of
// 2^48 and more) cannot be computed with it; see the README's dependency table.

const ALL128 = (1n << 128n) - 1n;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Text to number: full, "::"-compressed or IPv4-suffixed forms; a "%zone" is ignored. */
export function parse6(text: string): bigint {
  const bad = () => new Error(`not an IPv6 address: ${JSON.stringify(text)}`);
  let clean = text.split('%')[0] ?? '';
  // A trailing dotted IPv4 ("::ffff:10.0.0.1") stands for the last two groups.
  const dotted = /^(.*:)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(clean);
  if (dotted) {
    let v4: number;
    try {
      v4 = parse4(dotted[2] as string);
    } catch {
      throw bad();
    }
    clean = `${dotted[1]}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = clean.split('::');
  if (halves.length > 2) throw bad();
  const head = halves[0] === '' ? [] : (halves[0] as string).split(':');
  const tail = halves.length === 2 ? (halves[1] === '' ? [] : (halves[1] as string).split(':')) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) throw bad();
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  let value = 0n;
  for (const group of groups) {
    if (!HEX_GROUP.test(group)) throw bad();
    value = (value << 16n) | BigInt(parseInt(group, 16));
  }
  return value;
}

/** RFC 5952 text (what Python's ipaddress writes): lowercase, the longest run of two or more zero groups as "::". */
export function format6(value: bigint): string {
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((g) => g.toString(16)).join(':');
  if (best < 0) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

export function bytes6(value: bigint): Buffer {
  const out = Buffer.alloc(16);
  out.writeBigUInt64BE(value >> 64n, 0);
  out.writeBigUInt64BE(value & ((1n << 64n) - 1n), 8);
  return out;
}

export function fromBytes6(buffer: Buffer): bigint {
  return (buffer.readBigUInt64BE(0) << 64n) | buffer.readBigUInt64BE(8);
}

export function mask6(prefixlen: number): bigint {
  return prefixlen === 0 ? 0n : (ALL128 << BigInt(128 - prefixlen)) & ALL128;
}

/** Long netmask text, as the reference stores it ("ffff:ffff:ffff:ffff::"). */
export function netmask6(prefixlen: number): string {
  return format6(mask6(prefixlen));
}

export function parse4(text: string): number {
  // Decimal without leading zeros, as Python's ipaddress requires. A scan, not
  // a regular expression: format parses thousands of stored addresses once
  // per run, where a cold regular expression costs ~5 µs a call.
  const bad = () => new Error(`not an IPv4 address: ${JSON.stringify(text)}`);
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) throw bad();
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
      continue;
    }
    if (c < 48 || c > 57 || (digits === 1 && part === 0) || digits === 3) throw bad();
    part = part * 10 + (c - 48);
    digits++;
    if (part > 255) throw bad();
  }
  if (dots !== 3 || digits === 0) throw bad();
  return value * 256 + part;
}

export function format4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export function bytes4(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0, 0);
  return out;
}
