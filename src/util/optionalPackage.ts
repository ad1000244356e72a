/**
 * The packages only encoder mode needs (decoding images, running CLIP), imported on first use.
 *
 * They are optional peer dependencies (package.json `peerDependenciesMeta`): an application that
 * brings its own features installs neither (about 180 MB with onnxruntime-web), so importing
 * clap4clip must never load them, and using an encoder without them must say what to install
 * instead of Node's bare "Cannot find package".
 */
import { Clap4ClipError } from './errors.js';

/** Optional package -> the version this release is built and tested with (its devDependencies pin). */
export const OPTIONAL_PACKAGES = {
  '@huggingface/transformers': '4.3.1',
  sharp: '0.35.5',
} as const;

export type OptionalPackage = keyof typeof OPTIONAL_PACKAGES;

/** The command that installs every optional package at its tested version. */
export function installCommand(): string {
  return `npm install ${Object.entries(OPTIONAL_PACKAGES).map(([name, version]) => `${name}@${version}`).join(' ')}`;
}

/** True when `err` is Node's resolution failure for the package `name` itself (not a file inside it). */
export function isMissingPackage(err: unknown, name: string): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e === null || typeof e !== 'object' || typeof e.message !== 'string') return false;
  return (e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') && e.message.includes(`'${name}'`);
}

/** The error for `purpose` (e.g. "decoding images") without the package `name`. */
export function missingPackageError(name: OptionalPackage, purpose: string, cause?: unknown): Clap4ClipError {
  return new Clap4ClipError(
    `${purpose} needs the optional package "${name}", which is not installed. Install the encoder packages with ` +
      `\`${installCommand()}\` (an application that passes precomputed features needs neither).`,
    { cause },
  );
}

/**
 * Runs `load` (an `import()` of the package, or of a module that imports it statically) and turns
 * "package not found" for any optional package into `missingPackageError`; other errors pass through.
 */
export async function withOptionalPackages<T>(purpose: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    for (const name of Object.keys(OPTIONAL_PACKAGES) as OptionalPackage[]) {
      if (isMissingPackage(err, name)) throw missingPackageError(name, purpose, err);
    }
    throw err;
  }
}
