/**
 * RAPF's parameter fusion after each task but the first (linlany/RAPF `continual_clip/models.py`
 * `ClassIncrementalCLIP.mix_matrix`):
 *
 *   A_o = U S V^T (the adapter when the task began),  A_n = the trained adapter
 *   P = U^T A_n,  R = S V^T = U^T A_o,  Delta = |P - R|,  M = min(1, Delta / max Delta + b)
 *   A = U (M * P + (1 - M) * R) = A_o + U (M * (U^T (A_n - A_o)))
 *
 * Only U enters the second form. Flipping the sign of u_k flips row k of U^T (A_n - A_o), which
 * |.| (hence M) ignores and U flips back, so the result does not depend on the SVD's signs. When A_n = A_o (max Delta = 0,
 * where the authors divide 0 by 0) the adapter stays A_o.
 */

/**
 * The fused adapter, float64 arithmetic.
 * @param oldAdapter A_o [D, D] @param newAdapter A_n [D, D]
 * @param u U [D, D] (row-major, column j = the j-th left singular vector of A_o)
 * @returns A [D, D]
 */
export function fuseAdapters(oldAdapter: ArrayLike<number>, newAdapter: ArrayLike<number>, u: ArrayLike<number>, dim: number, mixBias: number): Float32Array {
  const D = dim;
  // Q = U^T (A_n - A_o)
  const delta = new Float64Array(D * D);
  for (let i = 0; i < D * D; i++) delta[i] = newAdapter[i]! - oldAdapter[i]!;
  const q = new Float64Array(D * D);
  for (let k = 0; k < D; k++) {
    for (let i = 0; i < D; i++) {
      const uki = u[k * D + i]!;
      if (uki === 0) continue;
      const qi = i * D, dk = k * D;
      for (let j = 0; j < D; j++) q[qi + j]! += uki * delta[dk + j]!;
    }
  }
  let max = 0;
  for (let i = 0; i < D * D; i++) max = Math.max(max, Math.abs(q[i]!));
  const out = Float32Array.from(oldAdapter);
  if (max === 0) return out;
  // M * Q, then A_o + U (M * Q)
  for (let i = 0; i < D * D; i++) q[i] = Math.min(1, Math.abs(q[i]!) / max + mixBias) * q[i]!;
  const acc = new Float64Array(D);
  for (let i = 0; i < D; i++) {
    acc.fill(0);
    for (let k = 0; k < D; k++) {
      const uik = u[i * D + k]!;
      if (uik === 0) continue;
      const qk = k * D;
      for (let j = 0; j < D; j++) acc[j]! += uik * q[qk + j]!;
    }
    for (let j = 0; j < D; j++) out[i * D + j] = oldAdapter[i * D + j]! + acc[j]!;
  }
  return out;
}
