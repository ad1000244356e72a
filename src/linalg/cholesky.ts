/**
 * Cholesky factorisation and the solves built on it, in float64: the closed-form steps of the
 * statistics-based methods (ridge regressions, Gaussian sampling, whitening) need exact, stable
 * solves of symmetric positive-definite systems, not an autodiff graph.
 *
 * Matrices are dense, row-major Float64Arrays: an [n, n] matrix A has A[i, j] at i * n + j; a
 * right-hand side B of m columns is [n, m]. Nothing here allocates more than its result.
 */
import { Clap4ClipError } from '../util/errors.js';

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
  for (let j = 0; j < n; j++) {
    const rowJ = j * n;
    let s = a[rowJ + j]!;
    for (let k = 0; k < j; k++) s -= L[rowJ + k]! * L[rowJ + k]!;
    if (!(s > 0) || !Number.isFinite(s)) {
      throw new LinalgError(`cholesky: the matrix is not positive definite (pivot ${j} of ${n} is ${s}); add a small multiple of the identity`);
    }
    const d = Math.sqrt(s);
    L[rowJ + j] = d;
    // Row-oriented: the inner products run over two contiguous rows of L.
    for (let i = j + 1; i < n; i++) {
      const rowI = i * n;
      let t = a[rowI + j]!;
      for (let k = 0; k < j; k++) t -= L[rowI + k]! * L[rowJ + k]!;
      L[rowI + j] = t / d;
    }
  }
  return L;
}

/** Solves L X = B in place (B [n, m] becomes X), L lower triangular [n, n]. */
export function solveLowerInPlace(L: ArrayLike<number>, b: Float64Array, n: number, m: number): Float64Array {
  checkSize(L, n, n, 'solveLower: L');
  checkSize(b, n, m, 'solveLower: B');
  for (let i = 0; i < n; i++) {
    const bi = i * m;
    for (let k = 0; k < i; k++) {
      const l = L[i * n + k]!;
      if (l === 0) continue;
      const bk = k * m;
      for (let c = 0; c < m; c++) b[bi + c]! -= l * b[bk + c]!;
    }
    const d = L[i * n + i]!;
    for (let c = 0; c < m; c++) b[bi + c]! /= d;
  }
  return b;
}

/** Solves L^T X = B in place (B [n, m] becomes X), L lower triangular [n, n]. */
export function solveLowerTransposedInPlace(L: ArrayLike<number>, b: Float64Array, n: number, m: number): Float64Array {
  checkSize(L, n, n, 'solveLowerTransposed: L');
  checkSize(b, n, m, 'solveLowerTransposed: B');
  for (let i = n - 1; i >= 0; i--) {
    const bi = i * m;
    const d = L[i * n + i]!;
    for (let c = 0; c < m; c++) b[bi + c]! /= d;
    // Column i of L below the diagonal = row i of L^T: subtract x_i from the rows above.
    for (let k = 0; k < i; k++) {
      const l = L[i * n + k]!;
      if (l === 0) continue;
      const bk = k * m;
      for (let c = 0; c < m; c++) b[bk + c]! -= l * b[bi + c]!;
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
