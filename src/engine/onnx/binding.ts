/**
 * onnxruntime-node's private native binding (`onnxruntime-node/dist/binding.js`), checked when the
 * engine loads. The engine calls it directly to run graphs synchronously (runtime.ts says why);
 * being private, it may change in any onnxruntime-node release, and without this check a changed
 * binding would surface as "x is not a function" inside the first matrix product.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The onnxruntime-node version this engine's use of the binding is written for (package.json pins it). */
export const PINNED_ONNXRUNTIME_NODE = '1.30.0';

const BINDING_PATH = 'onnxruntime-node/dist/binding.js';

export interface NativeTensor { type: string; data: Float32Array | Int32Array | BigInt64Array | Uint8Array | Float64Array; dims: readonly number[] }
export interface NativeSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, unknown>, fetches: Record<string, unknown>, options: object): Record<string, NativeTensor>;
  readonly inputMetadata: { name: string }[];
  readonly outputMetadata: { name: string }[];
  dispose(): void;
}
export interface BindingModule {
  binding: { InferenceSession: new () => NativeSession };
  initOrt: () => void;
}

/** Every member the engine uses: functions, then the session's metadata getters (on the prototype). */
const FUNCTIONS = ['initOrt', 'binding.InferenceSession', 'binding.InferenceSession.prototype.loadModel',
  'binding.InferenceSession.prototype.run', 'binding.InferenceSession.prototype.dispose'];
const PROPERTIES = ['binding.InferenceSession.prototype.inputMetadata', 'binding.InferenceSession.prototype.outputMetadata'];

/** The parent object of a dotted path and its last key, or null when a step is not an object. */
function parentOf(root: unknown, path: string): [object, string] | null {
  const keys = path.split('.');
  let o: unknown = root;
  for (const k of keys.slice(0, -1)) {
    if ((typeof o !== 'object' && typeof o !== 'function') || o === null) return null;
    o = (o as Record<string, unknown>)[k];
  }
  if ((typeof o !== 'object' && typeof o !== 'function') || o === null) return null;
  return [o, keys[keys.length - 1]!];
}

function missingMembers(mod: unknown): string[] {
  const missing: string[] = [];
  for (const path of FUNCTIONS) {
    const p = parentOf(mod, path);
    if (!p || typeof (p[0] as Record<string, unknown>)[p[1]] !== 'function') missing.push(`${path}()`);
  }
  // Getters are looked up, not called: called on the prototype they would throw.
  for (const path of PROPERTIES) {
    const p = parentOf(mod, path);
    if (!p || !(p[1] in p[0])) missing.push(path);
  }
  return missing;
}

function problem(version: string, what: string): Error {
  return new Error(
    `${BINDING_PATH}: onnxruntime-node ${version} ${what}. The engine calls this private binding directly `
    + `for synchronous runs; install the pinned version: npm install onnxruntime-node@${PINNED_ONNXRUNTIME_NODE}`,
  );
}

/**
 * Returns `mod` typed as the binding when it has every member the engine uses; otherwise throws
 * an Error naming the package, its version, each missing member and the fix.
 * @param mod what `onnxruntime-node/dist/binding.js` exports
 * @param version the installed onnxruntime-node's version
 */
export function checkBinding(mod: unknown, version: string): BindingModule {
  const missing = missingMembers(mod);
  if (missing.length) throw problem(version, `lacks ${missing.join(', ')} in its native binding`);
  return mod as BindingModule;
}

function installedVersion(): string {
  try {
    return String((require('onnxruntime-node/package.json') as { version?: unknown }).version ?? 'of unknown version');
  } catch {
    return 'of unknown version';
  }
}

/** Loads and checks the binding (once, when runtime.ts loads). */
export function loadBinding(): BindingModule {
  const version = installedVersion();
  let mod: unknown;
  try {
    mod = require(BINDING_PATH);
  } catch (e) {
    throw problem(version, `could not be loaded (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
  }
  return checkBinding(mod, version);
}
