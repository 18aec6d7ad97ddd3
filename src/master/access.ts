// Who may do what, as the real master decides it from the TLS client
// certificate (slap-protocol.md §7): a computer acts only as itself (and on
// its own partitions), a partition only as itself, a user supplies, requests
// and lists. Pure: identities and rules in, a yes/no out.

export type Identity =
  /** No client authentication configured (plain HTTP, or TLS without ca_file): part-1 behaviour. */
  | { kind: 'anyone' }
  /** Plain HTTP on loopback, the peer's socket owned by uid 0 (the node, the operator): everything. */
  | { kind: 'root' }
  | { kind: 'computer'; computer: string }
  /** `fingerprint` null: known by the kernel (loopback peer uid owning the partition), no certificate to check. */
  | { kind: 'partition'; computer: string; partition: string; fingerprint: string | null }
  | { kind: 'user'; user: string }
  /** Authentication is required and the client presented no valid certificate. */
  | { kind: 'nobody'; reason: string };

export type Rule =
  /** Acting as this computer (node reports, format, software list). */
  | { kind: 'computer'; computer: string }
  /** Reading or changing this partition: the partition itself or its computer. */
  | { kind: 'partition'; computer: string; partition: string }
  /** Only the partition itself (requests made as a partition, its connection parameters). */
  | { kind: 'partition-self'; computer: string; partition: string }
  /** A user of the master: supply, request, list, status page, metrics. */
  | { kind: 'user' }
  /** A computer reading its own data, or a user reading everything (JSON lists). */
  | { kind: 'computer-or-user'; computer: string };

export interface Subject {
  CN?: string | string[] | undefined;
  OU?: string | string[] | undefined;
}

const one = (value: string | string[] | undefined): string | undefined => (Array.isArray(value) ? undefined : value);

/**
 * The identity a verified certificate carries: OU says the role, CN the name
 * (a computer id, "<computer id>/<partition id>", or a user name). See
 * certificates.ts for how the master issues them.
 */
export function identityOf(subject: Subject | undefined, authorized: boolean, fingerprint: string, authError?: string): Identity {
  if (!authorized || !subject) return { kind: 'nobody', reason: authError ? `client certificate refused: ${authError}` : 'a client certificate is required' };
  const role = one(subject.OU);
  const name = one(subject.CN);
  if (!role || !name) return { kind: 'nobody', reason: 'client certificate lacks a single OU (role) and CN (name)' };
  if (role === 'computer') return { kind: 'computer', computer: name };
  if (role === 'user') return { kind: 'user', user: name };
  if (role === 'partition') {
    const slash = name.indexOf('/');
    if (slash > 0 && slash < name.length - 1) return { kind: 'partition', computer: name.slice(0, slash), partition: name.slice(slash + 1), fingerprint };
  }
  return { kind: 'nobody', reason: `client certificate role ${JSON.stringify(role)} with name ${JSON.stringify(name)} is not a computer, partition or user` };
}

export function allows(id: Identity, rule: Rule): boolean {
  if (id.kind === 'anyone' || id.kind === 'root') return true;
  if (id.kind === 'nobody') return false;
  switch (rule.kind) {
    case 'computer':
      return id.kind === 'computer' && id.computer === rule.computer;
    case 'partition':
      return (id.kind === 'computer' && id.computer === rule.computer) ||
        (id.kind === 'partition' && id.computer === rule.computer && id.partition === rule.partition);
    case 'partition-self':
      return id.kind === 'partition' && id.computer === rule.computer && id.partition === rule.partition;
    case 'user':
      return id.kind === 'user';
    case 'computer-or-user':
      return id.kind === 'user' || (id.kind === 'computer' && id.computer === rule.computer);
  }
}

export function describe(id: Identity): string {
  switch (id.kind) {
    case 'anyone': return 'anyone';
    case 'root': return 'root (local)';
    case 'nobody': return id.reason;
    case 'computer': return `computer ${id.computer}`;
    case 'partition': return `partition ${id.partition} of computer ${id.computer}`;
    case 'user': return `user ${id.user}`;
  }
}
