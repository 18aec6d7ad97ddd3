// Where the repository and the shared fixtures are (tests run from dist/test/...).
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (dist/test/helpers → ../../..). */
export const repoRoot = path.resolve(here, '..', '..', '..');
/** shared/ lives beside the repository (also in CI). */
export const sharedDir = path.resolve(repoRoot, '..', 'shared');
export const fixturesDir = path.join(sharedDir, 'fixtures');
