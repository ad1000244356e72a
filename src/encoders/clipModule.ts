/**
 * `clip.ts` imported on first use: it imports transformers.js (an optional package) statically, so
 * every caller goes through here and a missing package becomes an error that says what to install.
 */
import { withOptionalPackages } from '../util/optionalPackage.js';

export type ClipModule = typeof import('./clip.js');

/** The CLIP encoder module; `purpose` says what needed it (the start of the error without the package). */
export function importClipModule(purpose = 'a CLIP encoder (transformers.js)'): Promise<ClipModule> {
  return withOptionalPackages(purpose, () => import('./clip.js'));
}
