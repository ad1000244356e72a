/**
 * Cholesky factorisation and the solves built on it, in float64: the closed-form steps of the
 * statistics-based methods (ridge regressions, Gaussian sampling, whitening) need exact, stable
 * solves of symmetric positive-definite systems, not an autodiff graph.
 *
 * Matrices are dense, row-major Float64Arrays: an [n, n] matrix A has A[i, j] at i * n + j; a
 * right-hand side B of m columns is [n, m].
 *
 * Speed. Above one block (BLOCK rows) the factorisation and the solves are blocked: the work of
 * order n^3 (the trailing updates of the factorisation) and n^2 m (the off-diagonal blocks of a
 * solve) runs as float64 matrix products in onnxruntime (`gemm64.ts`); only the diagonal blocks
 * and the panel solves stay in plain loops. RanPAC's Gram matrix (n = 10000) is what this is
 * sized for: `npm run bench -- --only linalg` measures it. The blocked paths compute the same
 * factor up to rounding (the tests compare them with the plain loops).
 */
import { Clap4ClipError } from '../util/errors.js';
import { gemm64 } from './gemm64.js';

/**
 * Rows per block of the blocked paths (the plain loops below one block), and rows of the trailing
 * matrix updated per product (larger: fewer, larger products; the temporary is that many rows).
 */
export const linalgSettings = { block: 128, updateRows: 512 };

/** A matrix that is not what a factorisation needs (not positive definite, not finite, wrong size). */
export class LinalgError extends Clap4ClipError {}

function checkSize(a: ArrayLike<number>, rows: number, cols: number, what: string): void {
  if (a.length !== rows * cols) throw new LinalgError(`${what}: expected ${rows} x ${cols} = ${rows * cols} entries, got ${a.length}`);
}

/**
 * L with A = L L^T, L lower triangular [n, n] (upper part zero). Reads only the lower triangle of
 * `a`. Throws LinalgError naming the pivot when A is not (numerically) positive definite.
 */
export function cholesky(a: ArrayLike<number>, n: number): Float64Array {
  checkSize(a, n, n, 'cholesky');
  const L = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) L[i * n + j] = a[i * n + j]!;
  return choleskyInPlace(L, n);
}

function notPositiveDefinite(j: number, n: number, s: number): never {
  throw new LinalgError(`cholesky: the matrix is not positive definite (pivot ${j} of ${n} is ${s}); add a small multiple of the identity`);
}

/**
 * The diagonal block [k0, k1) of L in place, by the row-oriented unblocked recurrence (earlier
 * columns' contributions already subtracted). Reads and writes only the lower triangle.
 */
function factorDiagonalBlock(a: Float64Array, n: number, k0: number, k1: number): void {
  for (let j = k0; j < k1; j++) {
    const rowJ = j * n;
    let s = a[rowJ + j]!;
    for (let k = k0; k < j; k++) s -= a[rowJ + k]! * a[rowJ + k]!;
    if (!(s > 0) || !Number.isFinite(s)) notPositiveDefinite(j, n, s);
    const d = Math.sqrt(s);
    a[rowJ + j] = d;
    for (let i = j + 1; i < k1; i++) {
      const rowI = i * n;
      let t = a[rowI + j]!;
      for (let k = k0; k < j; k++) t -= a[rowI + k]! * a[rowJ + k]!;
      a[rowI + j] = t / d;
    }
  }
}

/** The inverse of the lower-triangular diagonal block [k0, k1) of `a`, [kb, kb] (forward substitution on I). */
function invertDiagonalBlock(a: Float64Array, n: number, k0: number, k1: number): Float64Array {
  const kb = k1 - k0;
  const inv = new Float64Array(kb * kb);
  for (let c = 0; c < kb; c++) {
    for (let i = c; i < kb; i++) {
      let t = i === c ? 1 : 0;
      for (let k = c; k < i; k++) t -= a[(k0 + i) * n + k0 + k]! * inv[k * kb + c]!;
      inv[i * kb + c] = t / a[(k0 + i) * n + k0 + i]!;
    }
  }
  return inv;
}

/**
 * The Cholesky factor in place: on exit the lower triangle of `a` [n, n] (diagonal included) is L
 * with A = L L^T; the strict upper triangle is not read and not cleared. Right-looking blocked:
 * per block of columns, factor the diagonal block and the panel below it, then subtract
 * P P^T from the lower triangle of the trailing matrix, one block row at a time (so no temporary
 * exceeds BLOCK x n). Throws LinalgError naming the pivot when A is not positive definite.
 */
export function choleskyInPlace(a: Float64Array, n: number): Float64Array {
  checkSize(a, n, n, 'cholesky');
  const nb = linalgSettings.block;
  for (let k0 = 0; k0 < n; k0 += nb) {
    const k1 = Math.min(n, k0 + nb);
    const kb = k1 - k0;
    factorDiagonalBlock(a, n, k0, k1);
    if (k1 === n) break;
    // The panel P = L[k1:n, k0:k1] = A[k1:n, k0:k1] L_kk^-T, as one product (the block's inverse
    // is a small triangular solve; the panel solve by loops would cost n^2 BLOCK / 2 in them).
    const r = n - k1;
    const panel = new Float64Array(r * kb);
    for (let i = 0; i < r; i++) panel.set(a.subarray((k1 + i) * n + k0, (k1 + i) * n + k1), i * kb);
    const P = gemm64(panel, invertDiagonalBlock(a, n, k0, k1), r, kb, kb, true);
    for (let i = 0; i < r; i++) a.set(P.subarray(i * kb, (i + 1) * kb), (k1 + i) * n + k0);
    for (let i0 = 0; i0 < r; i0 += linalgSettings.updateRows) {
      const i1 = Math.min(r, i0 + linalgSettings.updateRows);
      // Rows i0..i1 of the trailing matrix, columns up to the diagonal: -= P[i0:i1] P[0:i1]^T.
      const U = gemm64(P.subarray(i0 * kb, i1 * kb), P.subarray(0, i1 * kb), i1 - i0, kb, i1, true);
      for (let i = i0; i < i1; i++) {
        const row = (k1 + i) * n + k1;
        const u = (i - i0) * i1;
        for (let j = 0; j <= i; j++) a[row + j]! -= U[u + j]!;
      }
    }
  }
  return a;
}

/**
 * Solves L X = B in place (B [n, m] becomes X), L lower triangular [n, n] (only its lower
 * triangle is read). Blocked: rows [i0, i1) first subtract L[i0:i1, 0:i0] X[0:i0] as one product.
 */
export function solveLowerInPlace(L: ArrayLike<number>, b: Float64Array, n: number, m: number): Float64Array {
  checkSize(L, n, n, 'solveLower: L');
  checkSize(b, n, m, 'solveLower: B');
  const nb = linalgSettings.block;
  for (let i0 = 0; i0 < n; i0 += nb) {
    const i1 = Math.min(n, i0 + nb);
    if (i0 > 0) {
      const slab = new Float64Array((i1 - i0) * i0);
      for (let i = i0; i < i1; i++) for (let k = 0; k < i0; k++) slab[(i - i0) * i0 + k] = L[i * n + k]!;
      const u = gemm64(slab, b.subarray(0, i0 * m), i1 - i0, i0, m, false);
      for (let t = 0; t < u.length; t++) b[i0 * m + t]! -= u[t]!;
    }
    for (let i = i0; i < i1; i++) {
      const bi = i * m;
      for (let k = i0; k < i; k++) {
        const l = L[i * n + k]!;
        if (l === 0) continue;
        const bk = k * m;
        for (let c = 0; c < m; c++) b[bi + c]! -= l * b[bk + c]!;
      }
      const d = L[i * n + i]!;
      for (let c = 0; c < m; c++) b[bi + c]! /= d;
    }
  }
  return b;
}

/**
 * Solves L^T X = B in place (B [n, m] becomes X), L lower triangular [n, n] (only its lower
 * triangle is read). Blocked from the last rows up: rows [i0, i1) first subtract
 * L[i1:n, i0:i1]^T X[i1:n] as one product.
 */
export function solveLowerTransposedInPlace(L: ArrayLike<number>, b: Float64Array, n: number, m: number): Float64Array {
  checkSize(L, n, n, 'solveLowerTransposed: L');
  checkSize(b, n, m, 'solveLowerTransposed: B');
  const nb = linalgSettings.block;
  for (let i1 = n; i1 > 0; i1 -= nb) {
    const i0 = Math.max(0, i1 - nb);
    const rest = n - i1;
    if (rest > 0) {
      // (L[i1:n, i0:i1])^T, [i1 - i0, rest], built transposed so the product needs no flag.
      const slabT = new Float64Array((i1 - i0) * rest);
      for (let k = i1; k < n; k++) for (let j = i0; j < i1; j++) slabT[(j - i0) * rest + (k - i1)] = L[k * n + j]!;
      const u = gemm64(slabT, b.subarray(i1 * m), i1 - i0, rest, m, false);
      for (let t = 0; t < u.length; t++) b[i0 * m + t]! -= u[t]!;
    }
    for (let i = i1 - 1; i >= i0; i--) {
      const bi = i * m;
      const d = L[i * n + i]!;
      for (let c = 0; c < m; c++) b[bi + c]! /= d;
      // Column i of L within the block = row i of L^T: subtract x_i from the block's rows above.
      for (let k = i0; k < i; k++) {
        const l = L[i * n + k]!;
        if (l === 0) continue;
        const bk = k * m;
        for (let c = 0; c < m; c++) b[bk + c]! -= l * b[bi + c]!;
      }
    }
  }
  return b;
}

/** X = A^-1 B for A = L L^T (its Cholesky factor given), B [n, m]; B is left unchanged. */
export function choleskySolve(L: ArrayLike<number>, b: ArrayLike<number>, n: number, m: number): Float64Array {
  const x = Float64Array.from(b);
  solveLowerInPlace(L, x, n, m);
  return solveLowerTransposedInPlace(L, x, n, m);
}

/** X = A^-1 B for a symmetric positive-definite A [n, n] and B [n, m]. */
export function solveSpd(a: ArrayLike<number>, b: ArrayLike<number>, n: number, m: number): Float64Array {
  return choleskySolve(cholesky(a, n), b, n, m);
}
