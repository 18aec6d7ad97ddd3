// The plan's vocabulary: each step is one idempotent effect, as plain JSON
// data (addresses as text), so that `--dry-run --json` prints exactly what a
// run would do. apply.ts executes them in order.
export type Step =
  | { kind: 'users'; summary: string[] }
  | { kind: 'mkdir'; path: string; mode: number }
  | { kind: 'chmod'; path: string; mode: number }
  | { kind: 'chown'; path: string; uid: number; gid: number }
  | { kind: 'tap'; name: string; type: 'tap' | 'tun'; uid: number; gid: number; action: 'create' | 'set-owner' }
  | { kind: 'link-up'; name: string }
  | { kind: 'link-master'; name: string; master: string }
  | { kind: 'sysctl'; file: string; value: string }
  | { kind: 'addr-add'; dev: string; address: string; prefixlen: number; noprefixroute?: boolean; partition?: string }
  | { kind: 'addr-del'; dev: string; address: string; prefixlen: number }
  | { kind: 'route-add'; dst: string; dev: string; gateway?: string; local?: boolean }
  | { kind: 'route-del'; dst: string; dev: string; gateway?: string; local?: boolean }
  | { kind: 'cgroup-create'; name: string }
  | { kind: 'cgroup-write'; file: string; value: string }
  | { kind: 'cgroup-remove'; name: string }
  | { kind: 'write-file'; path: string; mode: number; content: string }
  | { kind: 'remove-partition-dir'; path: string }
  | { kind: 'tap-delete'; name: string; type: 'tap' | 'tun' };

export type StepKind = Step['kind'];

/** One line per step for logs and the plain --dry-run output. */
export function describe(step: Step): string {
  switch (step.kind) {
    case 'users':
      return `users: ${step.summary.join('; ')}`;
    case 'mkdir':
      return `mkdir ${step.path} (mode ${step.mode.toString(8)})`;
    case 'chmod':
      return `chmod ${step.mode.toString(8)} ${step.path}`;
    case 'chown':
      return `chown ${step.uid}:${step.gid} ${step.path}`;
    case 'tap':
      return `${step.action === 'create' ? 'create' : 'set owner of'} ${step.type} ${step.name} (uid ${step.uid}, gid ${step.gid})`;
    case 'link-up':
      return `set ${step.name} up`;
    case 'link-master':
      return `enslave ${step.name} to bridge ${step.master}`;
    case 'sysctl':
      return `write ${step.value} to ${step.file}`;
    case 'addr-add':
      return `add address ${step.address}/${step.prefixlen} on ${step.dev}${step.noprefixroute ? ' (noprefixroute)' : ''}`;
    case 'addr-del':
      return `delete address ${step.address}/${step.prefixlen} from ${step.dev}`;
    case 'route-add':
      return `add route ${step.local ? 'local ' : ''}${step.dst} dev ${step.dev}${step.gateway ? ` via ${step.gateway}` : ''}`;
    case 'route-del':
      return `delete route ${step.local ? 'local ' : ''}${step.dst} dev ${step.dev}${step.gateway ? ` via ${step.gateway}` : ''}`;
    case 'cgroup-create':
      return `create cgroup ${step.name}`;
    case 'cgroup-write':
      return `write ${step.value} to ${step.file}`;
    case 'cgroup-remove':
      return `remove cgroup ${step.name}`;
    case 'write-file':
      return `write ${step.path} (${Buffer.byteLength(step.content)} bytes, mode ${step.mode.toString(8)})`;
    case 'remove-partition-dir':
      return `remove partition directory ${step.path}`;
    case 'tap-delete':
      return `delete ${step.type} ${step.name}`;
  }
}

/** JSON form for --dry-run --json: file contents are shown by size only. */
export function printable(step: Step): object {
  if (step.kind === 'write-file') {
    const { content, ...rest } = step;
    return { ...rest, bytes: Buffer.byteLength(content) };
  }
  return step;
}
