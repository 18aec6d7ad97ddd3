// Test hook for crash convergence: SLAPOS_TEST_KILL_AT=<point> makes the
// process SIGKILL itself when it reaches that step boundary of a root-side
// commit, so that tests can check that the next run converges. Each module
// exports the list of its points (docs/design.md, "Commits and their
// boundaries"); tests iterate that list, so a boundary cannot be forgotten.
// Unset in production: one comparison per boundary.
const AT = process.env['SLAPOS_TEST_KILL_AT'];

/** SIGKILL ourselves here when the test asked for this point. */
export function killPoint(point: string): void {
  if (AT !== undefined && AT === point) process.kill(process.pid, 'SIGKILL');
}
