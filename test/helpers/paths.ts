// Where the repository and its recorded fixtures are (tests run from dist/test/...).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (dist/test/helpers → ../../..). */
export const repoRoot = path.resolve(here, '..', '..', '..');
/** Recorded reference data copied into the repository (see test/fixtures/README.md). */
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');
