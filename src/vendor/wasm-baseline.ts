// undici parses HTTP with llhttp compiled to WebAssembly. V8 compiles that
// module with its baseline compiler (Liftoff) and again with its optimizing
// one (TurboFan), whose compilation alone raised the peak RSS of a no-op
// `slapos node instance` by ~30 MiB (120 → 90 MiB, docs/performance.md,
// issue 29). Our HTTP exchanges are a few per pass and small: baseline code
// parses them well enough. undici is the only WebAssembly the node runs, and
// it compiles llhttp at its first connection, after this module ran.
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--liftoff-only');
