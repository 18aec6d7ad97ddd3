// The promise runner's API for the instance loop and the CLI (docs/promises.md).
export { runPartitionPromises, PromiseRunnerError, type RunPromisesOptions } from './runner.js';
export { partitionBanger, partitionClient, computerBang, type PartitionBang } from './bang.js';
export { partitionRef, listPromises, isStartedLocally } from './discover.js';
export { runNodePromises, nodePromiseExit, parseOnlyCp } from './node-promise.js';
export { readPromiseStatus, formatPromiseStatus } from './status.js';
export type { PartitionPromisesResult, PartitionRef, PromiseMode, PromiseOutcome, StatusFile, CacheFile } from './types.js';
