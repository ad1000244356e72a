/**
 * Eigendecomposition of a real symmetric matrix, A = V diag(lambda) V^T, in float64: Householder
 * reduction to tridiagonal form, then the implicit QL algorithm with shifts (EISPACK's tred2 and
 * tql2, as in the public-domain JAMA library's EigenvalueDecomposition). O(n^3), a few seconds at
 * n = 512 in plain loops.
 *
 * Why not Jacobi: it is simpler but several times slower at the sizes the methods use (512 to a
 * few thousand); why not the power method: every eigenpair is needed (whitening, CCA, SVD).
 */
import { LinalgError } from './cholesky.js';

export interface SymmetricEigen {
  /** Eigenvalues in ascending order, [n]. */
  values: Float64Array;
  /** Eigenvectors as ROWS, [n, n]: row j (unit norm) belongs to values[j]. Signs are arbitrary. */
  vectors: Float64Array;
  n: number;
}

/** Iterations of the QL step allowed per eigenvalue before giving up (EISPACK uses 30). */
const MAX_QL_ITERATIONS = 60;

/**
 * Householder tridiagonalisation (tred2). On entry V holds A (row-major [n, n]); on exit V holds
 * the accumulated orthogonal transform, d the diagonal and e the subdiagonal (e[0] = 0).
 */
function tridiagonalize(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) d[j] = V[(n - 1) * n + j]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
        V[j * n + i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k]! /= scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        V[j * n + i] = f;
        g = e[j]! + V[j * n + j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[k * n + j]! * d[k]!;
          e[k]! += V[k * n + j]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j]! /= h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j]! -= hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) V[k * n + j]! -= f * e[k]! + g * d[k]!;
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
      }
    }
    d[i] = h;
  }
  // Accumulate the transformations.
  for (let i = 0; i < n - 1; i++) {
    V[(n - 1) * n + i] = V[i * n + i]!;
    V[i * n + i] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[k * n + i + 1]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k * n + i + 1]! * V[k * n + j]!;
        for (let k = 0; k <= i; k++) V[k * n + j]! -= g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) V[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[(n - 1) * n + j]!;
    V[(n - 1) * n + j] = 0;
  }
  V[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

/**
 * Implicit QL on the tridiagonal (d, e) (tql2). `W` holds the transform's TRANSPOSE (row k =
 * column k of V), so each plane rotation updates two contiguous rows.
 */
function diagonalize(W: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n && Math.abs(e[m]!) > eps * tst1) m++;
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > MAX_QL_ITERATIONS) throw new LinalgError(`symmetricEigen: no convergence for eigenvalue ${l} of ${n} after ${MAX_QL_ITERATIONS} iterations (non-finite entries?)`);
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i]! -= h;
        f += h;
        p = d[m]!;
        let c = 1, c2 = 1, c3 = 1;
        const el1 = e[l + 1]!;
        let s = 0, s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          const a = i * n, b = (i + 1) * n;
          for (let k = 0; k < n; k++) {
            const t = W[b + k]!;
            W[b + k] = s * W[a + k]! + c * t;
            W[a + k] = c * W[a + k]! - s * t;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
}

/**
 * Eigenvalues (ascending) and unit eigenvectors (as rows) of the symmetric matrix `a` [n, n].
 * Only symmetry is assumed, not definiteness; `a` is read, never written. Throws LinalgError on a
 * non-square or non-finite input.
 */
export function symmetricEigen(a: ArrayLike<number>, n: number): SymmetricEigen {
  if (a.length !== n * n) throw new LinalgError(`symmetricEigen: expected ${n} x ${n} = ${n * n} entries, got ${a.length}`);
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]!)) throw new LinalgError(`symmetricEigen: entry (${Math.floor(i / n)}, ${i % n}) is ${a[i]}`);
  }
  const V = Float64Array.from(a);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  if (n === 0) return { values: d, vectors: V, n };
  tridiagonalize(V, d, e, n);
  // Transpose once so the QL rotations (and the result's eigenvectors) are contiguous rows.
  const W = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) W[j * n + i] = V[i * n + j]!;
  diagonalize(W, d, e, n);
  // Sort ascending, carrying the eigenvector rows along.
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[x]! - d[y]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    values[dst] = d[src]!;
    vectors.set(W.subarray(src * n, (src + 1) * n), dst * n);
  });
  return { values, vectors, n };
}
