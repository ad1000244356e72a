/**
 * Plain TypeScript matrix product: the oracle that the onnxruntime path is tested against, and
 * the fast path for very small products where a native call costs more than the arithmetic.
 * Y[M, N] = op(A) op(B), op(A) = A [M, K] or A^T with A stored [K, M]; likewise B.
 */
export function matmulRef(
  a: Float32Array, b: Float32Array, m: number, k: number, n: number,
  transA = false, transB = false,
): Float32Array {
  const y = new Float32Array(m * n);
  const row = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    row.fill(0);
    for (let p = 0; p < k; p++) {
      const av = transA ? a[p * m + i]! : a[i * k + p]!;
      if (av === 0) continue;
      if (transB) {
        for (let j = 0; j < n; j++) row[j]! += av * b[j * k + p]!;
      } else {
        const base = p * n;
        for (let j = 0; j < n; j++) row[j]! += av * b[base + j]!;
      }
    }
    for (let j = 0; j < n; j++) y[i * n + j] = row[j]!;
  }
  return y;
}
