/**
 * RAPF's class statistics and Gaussian pseudo-features (linlany/RAPF `continual_clip/models.py`):
 *
 *   mu_c = mean of the class's pre-adapter features,  S_c = unbiased covariance + jitter I
 *                                                            (`ClassIncrementalCLIP.analyze_mean_cov`)
 *   shrink(S) = S + d I + o (11^T - I),  d = mean diag(S),  o = mean of the non-zero off-diagonal
 *               entries (`shrink_cov`, alpha1 = alpha2 = 1; o := 0 when there is none, where the
 *               authors divide 0 by 0)
 *   x = mu + eps L^T,  eps ~ N(0, I),  L = chol(S') with S' = shrink(S) or S          (`sample`)
 *
 * Statistics accumulate in float64; the stored mean and covariance are float32 (what a checkpoint
 * holds), and L is always factored from the stored float32 S, so a resumed run samples exactly as
 * an uninterrupted one.
 */
import { gemm } from '../../engine/ops/index.js';
import type { Rng } from '../../engine/random.js';
import { DataError } from '../../util/errors.js';

/** mu [D] and S [D, D] (float32) of one class. */
export interface ClassStatistics {
  mean: Float32Array;
  cov: Float32Array;
}

/**
 * mu and the unbiased covariance + jitter I of the rows of `features` (row r at r * stride + offset).
 * @param rows the class's rows, at least two
 */
export function classStatistics(features: Float32Array, rows: ArrayLike<number>, stride: number, offset: number, dim: number, jitter: number, what: string): ClassStatistics {
  const n = rows.length;
  if (n < 2) throw new DataError(what, `RAPF needs at least 2 training samples per class for a covariance, got ${n}`);
  const mu = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    const o = rows[r]! * stride + offset;
    for (let i = 0; i < dim; i++) mu[i]! += features[o + i]!;
  }
  for (let i = 0; i < dim; i++) mu[i]! /= n;
  const acc = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    const o = rows[r]! * stride + offset;
    for (let i = 0; i < dim; i++) centred[i] = features[o + i]! - mu[i]!;
    // Upper triangle only; mirrored below.
    for (let i = 0; i < dim; i++) {
      const ci = centred[i]!;
      if (ci === 0) continue;
      const base = i * dim;
      for (let j = i; j < dim; j++) acc[base + j]! += ci * centred[j]!;
    }
  }
  const cov = new Float32Array(dim * dim);
  for (let i = 0; i < dim; i++) {
    for (let j = i; j < dim; j++) {
      const v = acc[i * dim + j]! / (n - 1) + (i === j ? jitter : 0);
      cov[i * dim + j] = v;
      cov[j * dim + i] = v;
    }
  }
  return { mean: Float32Array.from(mu), cov };
}

/** shrink(S) = S + d I + o (11^T - I) in float64. @param cov S [D, D] */
export function shrinkCov(cov: ArrayLike<number>, dim: number): Float64Array {
  let diag = 0, off = 0, offCount = 0;
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j < dim; j++) {
      const v = cov[i * dim + j]!;
      if (i === j) diag += v;
      else if (v !== 0) { off += v; offCount++; }
    }
  }
  const d = diag / dim, o = offCount === 0 ? 0 : off / offCount;
  const out = new Float64Array(dim * dim);
  for (let i = 0; i < dim * dim; i++) out[i] = cov[i]! + (i % (dim + 1) === 0 ? d : o);
  return out;
}

/**
 * `count` draws x = mu + eps L^T, eps from `rng` (row-major [count, D], as torch.randn(size, D)).
 * @param mean mu [D] @param factor L [D, D] lower triangular @returns [count, D]
 */
export function sampleGaussian(mean: Float32Array, factor: Float32Array, count: number, rng: Rng): Float32Array {
  const dim = mean.length;
  const eps = new Float32Array(count * dim);
  rng.fillNormal(eps);
  return gaussianFromNoise(mean, factor, eps, count);
}

/** mu + eps L^T for given noise eps [count, D] (the deterministic half of `sampleGaussian`). */
export function gaussianFromNoise(mean: Float32Array, factor: Float32Array, eps: Float32Array, count: number): Float32Array {
  const dim = mean.length;
  const x = gemm(eps, factor, count, dim, dim, false, true);
  for (let r = 0; r < count; r++) for (let i = 0; i < dim; i++) x[r * dim + i]! += mean[i]!;
  return x;
}
