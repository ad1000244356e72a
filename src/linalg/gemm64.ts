/**
 * Float64 matrix products for the blocked factorisations: onnxruntime's Gemm on doubles (a cached
 * one-node graph per transpose flag), or plain loops for small products where a native call costs
 * more than it saves. Measured on this machine's 2 shared cores: about 25 GFLOP/s through
 * onnxruntime against about 1 in the loops of `cholesky.ts`.
 */
import { attr, GraphBuilder } from '../engine/onnx/onnxModel.js';
import { cachedSession } from '../engine/onnx/runtime.js';

/** Products with at most this many multiply-adds run in plain loops. */
const SMALL_PRODUCT = 32768;

function session(transB: boolean) {
  return cachedSession(`gemm64:${+transB}`, () => {
    const g = new GraphBuilder('gemm64');
    g.input('A', 'float64', ['M', 'K']);
    g.input('B', 'float64', transB ? ['N', 'K'] : ['K', 'N']);
    g.node('Gemm', ['A', 'B'], { transA: attr.int(0), transB: attr.int(+transB) }, ['Y']);
    g.output('Y', 'float64', ['M', 'N']);
    return g.toBytes();
  });
}

/** Y [m, n] = A B (B [k, n]) or A B^T (transB: B [n, k]), A [m, k], all row-major float64. */
export function gemm64(a: Float64Array, b: Float64Array, m: number, k: number, n: number, transB: boolean): Float64Array {
  if (m === 0 || n === 0 || k === 0 || m * k * n <= SMALL_PRODUCT) {
    const y = new Float64Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let p = 0; p < k; p++) {
        const av = a[i * k + p]!;
        if (av === 0) continue;
        if (transB) for (let j = 0; j < n; j++) y[i * n + j]! += av * b[j * k + p]!;
        else for (let j = 0; j < n; j++) y[i * n + j]! += av * b[p * n + j]!;
      }
    }
    return y;
  }
  const out = session(transB).run({
    A: { type: 'float64', data: a, dims: [m, k] },
    B: { type: 'float64', data: b, dims: transB ? [n, k] : [k, n] },
  });
  return out['Y']!.data as Float64Array;
}
