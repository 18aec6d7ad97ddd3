// Pure parts of the fleet benchmark: each node's addresses, and the master's
// latency histogram (Prometheus text from /metrics) summed over endpoints.

export interface NodeAddresses {
  /** slapif0 in the node's namespace: its own IPv6 /64 and IPv4 /24. */
  ipv6: string;
  ipv4: string;
  ipv4Network: string;
  /** The namespace's end of the veth to the host bridge that holds the master's 10.253.0.1/16. */
  uplink: string;
}

export function fleetAddresses(n: number): NodeAddresses {
  if (!Number.isInteger(n) || n < 0 || n > 150) throw new Error(`node number ${n} out of 0..150`);
  return {
    ipv6: `fd00:20:${n.toString(16)}::1/64`,
    ipv4: `10.${100 + n}.0.1/24`,
    ipv4Network: `10.${100 + n}.0.0/24`,
    uplink: `10.253.1.${n + 1}/16`,
  };
}

export interface Histogram {
  /** Cumulative counts by upper bound (seconds; +Inf as Infinity), ascending. */
  buckets: [number, number][];
  sum: number;
  count: number;
}

/** Sums the series of one histogram whose label text passes `keep`. */
export function parseHistogram(text: string, name: string, keep: (labels: string) => boolean = () => true): Histogram {
  const byBound = new Map<number, number>();
  let sum = 0;
  let count = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+)\{([^}]*)\} (\S+)$/.exec(line.trim());
    if (!m || !m[1]!.startsWith(name) || !keep(m[2]!)) continue;
    const value = Number(m[3]);
    if (m[1] === `${name}_bucket`) {
      const le = /le="([^"]+)"/.exec(m[2]!)?.[1];
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Infinity : Number(le);
      byBound.set(bound, (byBound.get(bound) ?? 0) + value);
    } else if (m[1] === `${name}_sum`) sum += value;
    else if (m[1] === `${name}_count`) count += value;
  }
  return { buckets: [...byBound].sort((a, b) => a[0] - b[0]), sum, count };
}

/** after − before (what happened between two scrapes). */
export function subtractHistogram(after: Histogram, before: Histogram): Histogram {
  const old = new Map(before.buckets);
  return { buckets: after.buckets.map(([b, c]) => [b, c - (old.get(b) ?? 0)]), sum: after.sum - before.sum, count: after.count - before.count };
}

/** The upper bound of the bucket holding quantile q (NaN without observations). */
export function histogramQuantile(h: Histogram, q: number): number {
  const total = h.buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return Number.NaN;
  return h.buckets.find(([, c]) => c >= q * total)?.[0] ?? Number.NaN;
}
