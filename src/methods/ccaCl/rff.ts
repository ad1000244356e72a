/**
 * Random Fourier features of CCA-CL (zhwhu/CCA-CL `utils/inc_net.py` `RFF.__init__`/`RFF.map`):
 *
 *     phi(x) = sqrt(2 / D') cos(x W + b),   W in R^{D x D'} ~ N(0, 1) / sigma,   b ~ U[0, 2 pi)
 *
 * The reference draws W, b from a torch generator seeded 0; here they come from the method's
 * generator when the first task begins, and are saved with the method's state.
 */
import { gemm } from '../../engine/ops/matmul.js';
import type { Rng } from '../../engine/random.js';

export interface RandomFeatures {
  /** W, [D, D'] */
  w: Float32Array;
  /** b, [D'] */
  b: Float32Array;
  dim: number;
  rffDim: number;
}

export function drawRandomFeatures(dim: number, rffDim: number, sigma: number, rng: Rng): RandomFeatures {
  const w = new Float32Array(dim * rffDim);
  rng.fillNormal(w, 0, 1 / sigma);
  const b = new Float32Array(rffDim);
  rng.fillUniform(b, 0, 2 * Math.PI);
  return { w, b, dim, rffDim };
}

/**
 * phi of n rows.
 * @param x [n, D] @returns [n, D']
 */
export function mapRandomFeatures(rff: RandomFeatures, x: Float32Array, n: number): Float32Array {
  const { dim, rffDim, b } = rff;
  if (x.length !== n * dim) throw new Error(`random features: ${x.length} values for n x D = ${n} x ${dim}`);
  const y = gemm(x, rff.w, n, dim, rffDim);
  const scale = Math.sqrt(2 / rffDim);
  for (let i = 0; i < n; i++) {
    const o = i * rffDim;
    for (let j = 0; j < rffDim; j++) y[o + j] = scale * Math.cos(y[o + j]! + b[j]!);
  }
  return y;
}
