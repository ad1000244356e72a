/**
 * RanPAC's closed-form steps as pure functions (the equations and their sources are in
 * `ranpac.ts`): the random-feature map, the Gram and class-sum statistics, the ridge-parameter
 * search and the ridge readout. Large products go through `gemm` (float32, as the reference's
 * torch tensors) and the solves through `src/linalg` (float64, blocked).
 *
 * G is symmetric and M x M (400 MB as float32 at M = 10000), so it is kept as its packed upper
 * triangle: row i holds G[i, i..M) at `packedOffset(i, M)`. That halves its memory, its
 * checkpoint and the work of accumulating it.
 */
import { gemm } from '../../engine/ops/matmul.js';
import { choleskyInPlace, choleskySolve, LinalgError, solveLowerInPlace, solveLowerTransposedInPlace } from '../../linalg/cholesky.js';
import { Clap4ClipError } from '../../util/errors.js';

/** Rows of G accumulated per product (bounds the temporary to this many rows of M). */
const GRAM_BLOCK = 512;

/** Where row i of a packed upper triangle of an [M, M] matrix starts. */
export function packedOffset(i: number, M: number): number {
  return i * M - (i * (i - 1)) / 2;
}

/** Entries of the packed upper triangle of an [M, M] matrix. */
export function packedSize(M: number): number {
  return (M * (M + 1)) / 2;
}

/**
 * Transposed random features H^T = ReLU(f W)^T, [M, n]: the layout the Gram products read row
 * blocks of. With no projection (W null) H = f, so H^T = f^T [D, n].
 * @param f [n, D] @param W [D, M]
 */
export function randomFeaturesT(f: Float32Array, n: number, D: number, W: Float32Array | null, M: number): Float32Array {
  if (W === null) {
    const t = new Float32Array(D * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < D; j++) t[j * n + i] = f[i * D + j]!;
    return t;
  }
  const ht = gemm(W, f, M, D, n, true, true);
  for (let i = 0; i < ht.length; i++) if (!(ht[i]! > 0)) ht[i] = 0;
  return ht;
}

/**
 * Random features H = ReLU(f W), [n, M] (H = f without a projection).
 * @param f [n, D] @param W [D, M]
 */
export function randomFeatures(f: Float32Array, n: number, D: number, W: Float32Array | null, M: number): Float32Array {
  if (W === null) return f.slice();
  const h = gemm(f, W, n, D, M);
  for (let i = 0; i < h.length; i++) if (!(h[i]! > 0)) h[i] = 0;
  return h;
}

/** G += H^T H on the packed upper triangle of G [M, M], from H^T [M, n], one block of rows per product. */
export function accumulateGram(gPacked: Float32Array, ht: Float32Array, M: number, n: number): void {
  for (let i0 = 0; i0 < M; i0 += GRAM_BLOCK) {
    const i1 = Math.min(M, i0 + GRAM_BLOCK);
    // Rows i0..i1 against rows i0..M: only the upper triangle is computed.
    const block = gemm(ht.subarray(i0 * n, i1 * n), ht.subarray(i0 * n), i1 - i0, n, M - i0, false, true);
    for (let i = i0; i < i1; i++) {
      const g = packedOffset(i, M);
      const b = (i - i0) * (M - i0) + (i - i0);
      for (let j = 0; j < M - i; j++) gPacked[g + j]! += block[b + j]!;
    }
  }
}

/** Q^T += Y^T H: row c of `qRows` [C, M] gains the sum of the features of the rows labelled c. */
export function accumulateClassSums(qRows: Float32Array, ht: Float32Array, labels: Int32Array, M: number, classes: number): void {
  const n = labels.length;
  for (let i = 0; i < n; i++) if (!(labels[i]! >= 0 && labels[i]! < classes)) throw new Clap4ClipError(`ranpac: label ${labels[i]} of row ${i} is outside the ${classes} classes`);
  const sums = new Float64Array(classes);
  for (let m = 0; m < M; m++) {
    sums.fill(0);
    const row = m * n;
    for (let i = 0; i < n; i++) sums[labels[i]!]! += ht[row + i]!;
    for (let c = 0; c < classes; c++) qRows[c * M + m]! += sums[c]!;
  }
}

/** A + lambda I in float64 from the packed upper triangle of A [M, M] (both triangles filled). */
function unpackedPlusRidge(aPacked: Float32Array, M: number, lambda: number): Float64Array {
  const a = new Float64Array(M * M);
  for (let i = 0; i < M; i++) {
    const o = packedOffset(i, M);
    for (let j = i; j < M; j++) a[i * M + j] = a[j * M + i] = aPacked[o + j - i]!;
    a[i * M + i]! += lambda;
  }
  return a;
}

/**
 * The ridge readout Wo = ((G + lambda I)^-1 Q)^T, [C, M], with G as a packed upper triangle and
 * Q given as its rows Q^T [C, M]. Float64 Cholesky; throws LinalgError when G + lambda I is not
 * numerically positive definite.
 */
export function ridgeReadout(gPacked: Float32Array, qRows: Float32Array, M: number, classes: number, lambda: number): Float32Array {
  const a = unpackedPlusRidge(gPacked, M, lambda);
  choleskyInPlace(a, M);
  const b = new Float64Array(M * classes);
  for (let c = 0; c < classes; c++) for (let m = 0; m < M; m++) b[m * classes + c] = qRows[c * M + m]!;
  solveLowerInPlace(a, b, M, classes);
  solveLowerTransposedInPlace(a, b, M, classes);
  const wo = new Float32Array(classes * M);
  for (let c = 0; c < classes; c++) for (let m = 0; m < M; m++) wo[c * M + m] = b[m * classes + c]!;
  return wo;
}

/** The reference's candidates: 10^k for k = minExponent..maxExponent. */
export function ridgeCandidates(minExponent: number, maxExponent: number): number[] {
  return Array.from({ length: maxExponent - minExponent + 1 }, (_, i) => 10 ** (minExponent + i));
}

export interface RidgeSearch {
  candidates: number[];
  /** Mean squared error on the held-out rows per candidate (Infinity: its system was not positive definite). */
  losses: number[];
  /** The first candidate of least loss. */
  lambda: number;
  /** 'dual' (n_v < M) or 'primal'. */
  form: 'dual' | 'primal';
}

/**
 * RanPAC's lambda search: for each candidate, the ridge regression fitted on the first n_v rows
 * (H_v [n_v, M], targets Y_v [n_v, k]) predicts the other rows (H_r [n_r, M]); the loss is the
 * mean squared error against Y_r [n_r, k]; the first argmin wins. With n_v < M it solves the dual
 * form H_r H_v^T (H_v H_v^T + l I)^-1 Y_v (an [n_v, n_v] system), otherwise the primal
 * H_r (H_v^T H_v + l I)^-1 H_v^T Y_v ([M, M]): equal in exact arithmetic.
 */
export function searchRidge(hv: Float32Array, yv: Float64Array, nv: number, hr: Float32Array, yr: Float64Array, nr: number, M: number, k: number, candidates: readonly number[]): RidgeSearch {
  if (nv < 1 || nr < 1) throw new Clap4ClipError(`ranpac: the ridge search needs at least one fitting and one held-out row (got ${nv} and ${nr})`);
  const form = nv < M ? 'dual' : 'primal';
  // Both forms: pred(l) = P S(l)^-1 R with S(l) = S + l I of size s.
  let s: number, S: Float64Array, P: Float64Array, R: Float64Array;
  if (form === 'dual') {
    s = nv;
    S = Float64Array.from(gemm(hv, hv, nv, M, nv, false, true));
    P = Float64Array.from(gemm(hr, hv, nr, M, nv, false, true));
    R = yv;
  } else {
    s = M;
    S = Float64Array.from(gemm(hv, hv, M, nv, M, true, false));
    P = Float64Array.from(hr);
    R = new Float64Array(M * k);
    for (let i = 0; i < nv; i++) for (let m = 0; m < M; m++) {
      const h = hv[i * M + m]!;
      if (h !== 0) for (let c = 0; c < k; c++) R[m * k + c]! += h * yv[i * k + c]!;
    }
  }
  const losses = candidates.map((lambda) => {
    const a = S.slice();
    for (let i = 0; i < s; i++) a[i * s + i]! += lambda;
    let x: Float64Array;
    try {
      x = choleskySolve(choleskyInPlace(a, s), R, s, k);
    } catch (err) {
      if (err instanceof LinalgError) return Infinity;
      throw err;
    }
    let sse = 0;
    for (let i = 0; i < nr; i++) {
      for (let c = 0; c < k; c++) {
        let p = 0;
        for (let j = 0; j < s; j++) p += P[i * s + j]! * x[j * k + c]!;
        sse += (p - yr[i * k + c]!) ** 2;
      }
    }
    return sse / (nr * k);
  });
  let best = 0;
  for (let i = 1; i < losses.length; i++) if (losses[i]! < losses[best]!) best = i;
  if (!Number.isFinite(losses[best]!)) throw new Clap4ClipError(`ranpac: no ridge candidate in [${candidates[0]}, ${candidates.at(-1)}] gives a positive-definite system`);
  return { candidates: [...candidates], losses, lambda: candidates[best]!, form };
}
