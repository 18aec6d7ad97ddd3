// The record of what this test run created, for scripts/clean-test-leftovers.sh.
// Tests remove what they create in their teardown; a test process killed by a
// timeout cannot, so every helper that creates a kernel object, a user, a
// directory or starts a server also appends one line here as it does it:
//   "<kind> <value>", kind one of
//   prefix  a random test-made name prefix (testName): namespaces, users,
//           groups and top-level cgroups whose names start with it are ours;
//   netns, user, group  an exact name;
//   dir     a temporary directory (supervisord.pid / postmaster.pid files in
//           it point at servers the run started).
// The file is named by $SLAPOS_TEST_REGISTRY, which scripts/test.sh sets to a
// fresh file; without it (a single `npx ava` run) nothing is recorded.
import { appendFileSync } from 'node:fs';

export type RegistryKind = 'prefix' | 'netns' | 'user' | 'group' | 'dir';

export function recordCreated(kind: RegistryKind, value: string): void {
  const file = process.env.SLAPOS_TEST_REGISTRY;
  if (!file) return;
  if (/[\s]/.test(value) || value === '') throw new Error(`registry: refusing to record ${kind} "${value}"`);
  // One short O_APPEND write per line: lines from concurrent workers do not interleave.
  appendFileSync(file, `${kind} ${value}\n`);
}
