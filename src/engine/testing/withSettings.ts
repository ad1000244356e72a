/**
 * Tests that force an engine path (gemmSettings, fusedSettings, runtimeSettings) change state every
 * later test in the process sees. `withSettings` puts the previous values back in a `finally`, so a
 * failing assertion cannot leave, say, every later product forced onto the TypeScript path.
 */

/**
 * Runs `fn` with `patch` applied to the settings object `target`, then restores the values it
 * replaced, also when `fn` throws. `fn` must be synchronous (an async `fn` would see the settings
 * restored at its first await), and a returned promise is an error.
 */
export function withSettings<T extends object, R>(target: T, patch: Partial<NoInfer<T>>, fn: () => R): R {
  const saved: Partial<T> = {};
  for (const key of Object.keys(patch) as (keyof T)[]) saved[key] = target[key];
  Object.assign(target, patch);
  let result: R;
  try {
    result = fn();
  } finally {
    Object.assign(target, saved);
  }
  if (typeof (result as { then?: unknown } | null)?.then === 'function') {
    throw new Error('withSettings: fn returned a promise; the settings were restored before it settled');
  }
  return result;
}
