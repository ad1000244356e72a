/**
 * Left singular vectors of a real matrix A [m, k] = U S V^T, from the eigendecomposition of the
 * symmetric A A^T = U S^2 U^T (float64). For what needs U alone (RAPF's parameter fusion projects
 * onto U^T and back): no V, no bidiagonalisation. Signs are arbitrary, as every SVD's; singular
 * values that are equal (or both below the round-off of S^2) leave their vectors' subspace basis
 * arbitrary too.
 */
import { LinalgError } from './cholesky.js';
import { symmetricEigen } from './symmetricEigen.js';

export interface LeftSingular {
  /** U [m, m], row-major: column j is the j-th left singular vector. */
  u: Float64Array;
  /** Singular values in descending order, [m] (sqrt of A A^T's eigenvalues, negatives from round-off clamped to 0). */
  values: Float64Array;
}

export function leftSingularVectors(a: ArrayLike<number>, m: number, k: number): LeftSingular {
  if (a.length !== m * k) throw new LinalgError(`leftSingularVectors: expected ${m} x ${k} = ${m * k} entries, got ${a.length}`);
  const gram = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = i; j < m; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t]! * a[j * k + t]!;
      gram[i * m + j] = s;
      gram[j * m + i] = s;
    }
  }
  const { values, vectors } = symmetricEigen(gram, m);
  // Eigenvalues ascend; singular values descend: eigenvector row m-1-j becomes column j of U.
  const u = new Float64Array(m * m);
  const sv = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    const src = m - 1 - j;
    sv[j] = Math.sqrt(Math.max(0, values[src]!));
    for (let i = 0; i < m; i++) u[i * m + j] = vectors[src * m + i]!;
  }
  return { u, values: sv };
}
