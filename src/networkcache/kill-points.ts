// The step boundaries of an install from the binary cache (docs/design.md,
// "Commits and their boundaries"), for SLAPOS_TEST_KILL_AT (util/kill-point.ts):
// the node's around the extraction, and the extraction worker's. A test's kill
// at a worker boundary stands for the whole node killed there: the node,
// seeing its worker killed at the point the test asked for, kills itself too.
export const DOWNLOAD_KILL_POINTS = [
  /** The blob is downloaded and checked in the root-private temporary directory; nothing unpacked. */
  'cache.downloaded',
  /** The release is renamed into place (the worker succeeded); not reported, no `.completed`. */
  'cache.extracted',
] as const;

export const EXTRACT_KILL_POINTS = [
  /** The staging directory `.<hash>.extract-XXXXXX` exists, empty. */
  'cache.extract.staging',
  /** The first regular file is written in the staging directory: a half-extracted tree. */
  'cache.extract.member',
  /** Every member is written, modes set, the marker written; not renamed. */
  'cache.extract.unpacked',
  /** `<hash>` renamed into place; the (empty) staging directory not removed yet. */
  'cache.extract.renamed',
] as const;
