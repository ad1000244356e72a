/**
 * Where a result came from: the package version, the git commit of the code when it runs from a
 * checkout (null from an installed package or without git), and the Node.js version. Recorded in
 * results.json and shown in the report's configuration panel.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../util/paths.js';

export interface Provenance {
  version: string;
  /** `git rev-parse HEAD` of the package folder, null when it is not a git checkout. */
  commit: string | null;
  node: string;
  /** onnxruntime's intra-op threads: the last bits of a product can depend on how it is split. */
  onnxruntimeThreads: number;
}

let cached: Omit<Provenance, 'onnxruntimeThreads'> | null = null;

function gitCommit(dir: string): string | null {
  try {
    const out = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).trim();
    return /^[0-9a-f]{40}$/.test(out) ? out : null;
  } catch {
    return null;
  }
}

/** The version in clap4clip's own package.json ('unknown' without one), as `clap4clip -V` prints it. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/**
 * The provenance of this process (computed once), with the onnxruntime thread count it computes
 * with. The caller passes that count, so that this module (which `clap4clip -V` loads) does not
 * load onnxruntime.
 */
export function provenance(onnxruntimeThreads: number): Provenance {
  cached ??= { version: packageVersion(), commit: gitCommit(repoRoot()), node: process.version };
  return { ...cached, onnxruntimeThreads };
}
