/**
 * Where the repository lives, from `src/` or `dist/src/`: tests find their fixtures under
 * `<repoRoot>/tests/fixtures/`, the benchmarks write their results under `<repoRoot>/bench/`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'clap4clip';

/** True when `dir/package.json` exists and names this package (skips stray package.json files). */
function isRepoRoot(dir: string): boolean {
  const p = join(dir, 'package.json');
  if (!existsSync(p)) return false;
  try {
    return (JSON.parse(readFileSync(p, 'utf8')) as { name?: unknown }).name === PACKAGE_NAME;
  } catch {
    return false;
  }
}

function walkUp(start: string): string | null {
  let dir = resolve(start);
  for (;;) {
    if (isRepoRoot(dir)) return dir;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

let cachedRoot: string | null = null;

/**
 * The folder holding this package's package.json: walk up from this module (works from `src/`
 * and `dist/src/`), then from the working directory (for builds emitted outside the repository).
 */
export function repoRoot(): string {
  if (cachedRoot !== null) return cachedRoot;
  const found = walkUp(dirname(fileURLToPath(import.meta.url))) ?? walkUp(process.cwd());
  if (found === null) {
    throw new Error(`repoRoot: no package.json named "${PACKAGE_NAME}" above this module or the cwd`);
  }
  cachedRoot = found;
  return found;
}
