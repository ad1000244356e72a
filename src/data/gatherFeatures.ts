/**
 * Rows of a features split as a dense matrix: what training batches, evaluation and the
 * statistics-based methods read. In data/ because every layer above it needs it.
 */
import type { FeaturesSplit } from './types.js';

/**
 * Features of `indices`, one view each (view 0 = the image itself unless `views` says otherwise).
 * @returns [n, D]
 */
export function gatherFeatures(split: FeaturesSplit, indices: ArrayLike<number>, views?: ArrayLike<number>): Float32Array {
  const { dim: D, views: V, features } = split;
  const out = new Float32Array(indices.length * D);
  for (let i = 0; i < indices.length; i++) {
    const o = (indices[i]! * V + (views ? views[i]! : 0)) * D;
    out.set(features.subarray(o, o + D), i * D);
  }
  return out;
}
