/**
 * Matrix products with gradients. Every product goes through `gemm`, which runs in onnxruntime
 * (a cached one-node `Gemm` graph per transpose combination, dynamic shapes) or, below a size
 * threshold, in TypeScript. Transposed operands are handled by Gemm's flags, never by copies.
 */
import { GraphBuilder, attr } from '../onnx/onnxModel.js';
import { cachedSession } from '../onnx/runtime.js';
import { matmulRef } from '../matmulRef.js';
import { accumulateGrad, inBackwardRate, result, shapeToString, Tensor } from '../tensor.js';

/** Products with at most this many multiply-adds run in TypeScript (measured crossover). */
export const gemmSettings = { smallProductThreshold: 4096, forcePath: null as null | 'onnx' | 'ts' };

function gemmSession(transA: boolean, transB: boolean, withBias = false) {
  return cachedSession(`gemm:${+transA}${+transB}${withBias ? ':bias' : ''}`, () => {
    const g = new GraphBuilder('gemm');
    g.input('A', 'float32', transA ? ['K', 'M'] : ['M', 'K']);
    g.input('B', 'float32', transB ? ['N', 'K'] : ['K', 'N']);
    if (withBias) g.input('C', 'float32', ['N']);
    g.node('Gemm', withBias ? ['A', 'B', 'C'] : ['A', 'B'], { transA: attr.int(+transA), transB: attr.int(+transB) }, ['Y']);
    g.output('Y', 'float32', ['M', 'N']);
    return g.toBytes();
  });
}

/** Y[M, N] = op(A) op(B) on raw buffers. */
export function gemm(
  a: Float32Array, b: Float32Array, m: number, k: number, n: number,
  transA = false, transB = false,
): Float32Array {
  const small = m * k * n <= gemmSettings.smallProductThreshold;
  const path = gemmSettings.forcePath ?? (small ? 'ts' : 'onnx');
  if (path === 'ts' || m === 0 || n === 0 || k === 0) return matmulRef(a, b, m, k, n, transA, transB);
  const out = gemmSession(transA, transB).run({
    A: { type: 'float32', data: a, dims: transA ? [k, m] : [m, k] },
    B: { type: 'float32', data: b, dims: transB ? [n, k] : [k, n] },
  });
  return out['Y']!.data as Float32Array;
}

function sgdSession(withBiasGradient: boolean) {
  return cachedSession(`gemm:sgd${withBiasGradient ? ':bias' : ''}`, () => {
    const g = new GraphBuilder('sgd_gemm');
    g.input('G', 'float32', ['M', 'N']);
    g.input('X', 'float32', ['M', 'K']);
    g.input('W', 'float32', ['N', 'K']);
    g.input('NEG_LR', 'float32', []);
    g.node('Mul', ['G', 'NEG_LR'], {}, ['GS']);
    g.node('Gemm', ['GS', 'X', 'W'], { transA: attr.int(1), beta: attr.float(1) }, ['Y']);
    g.output('Y', 'float32', ['N', 'K']);
    if (withBiasGradient) {
      // The bias's gradient, sum over rows of G, rides along (vectorized, no extra call).
      g.node('ReduceSum', ['G', g.constInt64([0])], { keepdims: attr.int(0) }, ['GB']);
      g.output('GB', 'float32', ['N']);
    }
    return g.toBytes();
  });
}

/**
 * Plain SGD folded into the weight-gradient product: W[N, K] -= lr * G^T X for y = x W^T, with
 * G = dL/dy [M, N] and x [M, K]. One Gemm with C = W replaces writing dL/dW and a pass over it
 * (engine-notes.md); the learning rate scales G, the smaller operand. Rounds differently from
 * `SGD.step` (the product absorbs lr); below the small-product threshold the update is step's.
 */
/** With `biasGradient`, also returns the column sums of G [N] (a bias's gradient); else null. */
function sgdWeightUpdate(g: Float32Array, x: Float32Array, w: Float32Array, m: number, n: number, k: number, lr: number, biasGradient = false): Float32Array | null {
  if (m * n * k <= gemmSettings.smallProductThreshold || gemmSettings.forcePath === 'ts') {
    const gw = matmulRef(g, x, n, m, k, true, false);
    for (let i = 0; i < w.length; i++) w[i]! -= lr * gw[i]!;
    return biasGradient ? columnSums(g, n) : null;
  }
  // The new W is written straight into the parameter's buffer: Gemm has read C = W by then.
  const weight = { type: 'float32', data: w, dims: [n, k] } as const;
  const out = sgdSession(biasGradient).run({
    G: { type: 'float32', data: g, dims: [m, n] },
    X: { type: 'float32', data: x, dims: [m, k] },
    W: weight,
    NEG_LR: { type: 'float32', data: Float32Array.of(-lr), dims: [] },
  }, { Y: weight });
  return biasGradient ? out['GB']!.data as Float32Array : null;
}

export interface MatmulOptions { transA?: boolean; transB?: boolean }

/**
 * op(a) @ op(b). `a` may have leading batch dimensions ([..., M, K], no transA), which are folded
 * into M: the usual shape of features times a weight matrix.
 */
export function matmul(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false, transB = opts.transB ?? false;
  if (b.ndim !== 2 || a.ndim < 2 || (transA && a.ndim !== 2)) {
    throw new Error(`matmul: unsupported shapes ${shapeToString(a.shape)} x ${shapeToString(b.shape)} (use bmm for batches)`);
  }
  const lead = a.shape.slice(0, -2);
  const aRows = a.shape[a.ndim - 2]!, aCols = a.shape[a.ndim - 1]!;
  const m = transA ? aCols : a.size / aCols;
  const k = transA ? aRows : aCols;
  const kb = transB ? b.shape[1]! : b.shape[0]!;
  const n = transB ? b.shape[0]! : b.shape[1]!;
  if (k !== kb) throw new Error(`matmul: inner dimensions differ: ${shapeToString(a.shape)}${transA ? '^T' : ''} x ${shapeToString(b.shape)}${transB ? '^T' : ''}`);
  const y = gemm(a.data, b.data, m, k, n, transA, transB);
  const outShape = transA ? [m, n] : [...lead, aRows, n];
  const out = result(y, outShape, [a, b], 'matmul');
  out.backwardFn = () => {
    const g = out.grad!;
    if (a.requiresGrad) {
      // dA for op(A) = A: dY op(B)^T; for op(A) = A^T: op(B) dY^T.
      const ga = transA ? gemm(b.data, g, k, n, m, transB, true) : gemm(g, b.data, m, n, k, false, !transB);
      accumulateGrad(a, ga, true);
    }
    const rate = transB && !transA ? inBackwardRate(b) : undefined;
    if (rate !== undefined) sgdWeightUpdate(g, a.data, b.data, m, n, k, rate);
    else if (b.requiresGrad) {
      // dB for op(B) = B: op(A)^T dY; for op(B) = B^T: dY^T op(A).
      const gb = transB ? gemm(g, a.data, n, m, k, true, transA) : gemm(a.data, g, k, m, n, !transA, false);
      accumulateGrad(b, gb, true);
    }
  };
  return out;
}

/** Batched product: a [S, M, K] (or [S, K, M] with transA) times b [S, K, N] (or [S, N, K]). */
export function bmm(a: Tensor, b: Tensor, opts: MatmulOptions = {}): Tensor {
  const transA = opts.transA ?? false, transB = opts.transB ?? false;
  if (a.ndim !== 3 || b.ndim !== 3 || a.shape[0] !== b.shape[0]) {
    throw new Error(`bmm: expected [S, ., .] x [S, ., .], got ${shapeToString(a.shape)} x ${shapeToString(b.shape)}`);
  }
  const s = a.shape[0]!;
  const m = transA ? a.shape[2]! : a.shape[1]!, k = transA ? a.shape[1]! : a.shape[2]!;
  const kb = transB ? b.shape[2]! : b.shape[1]!, n = transB ? b.shape[1]! : b.shape[2]!;
  if (k !== kb) throw new Error(`bmm: inner dimensions differ: ${shapeToString(a.shape)} x ${shapeToString(b.shape)}`);
  const sa = m * k, sb = k * n, sy = m * n;
  const y = new Float32Array(s * sy);
  for (let i = 0; i < s; i++) {
    y.set(gemm(a.data.subarray(i * sa, (i + 1) * sa), b.data.subarray(i * sb, (i + 1) * sb), m, k, n, transA, transB), i * sy);
  }
  const out = result(y, [s, m, n], [a, b], 'bmm');
  out.backwardFn = () => {
    const g = out.grad!;
    const ga = a.requiresGrad ? new Float32Array(a.size) : null;
    const gb = b.requiresGrad ? new Float32Array(b.size) : null;
    for (let i = 0; i < s; i++) {
      const gi = g.subarray(i * sy, (i + 1) * sy);
      const ai = a.data.subarray(i * sa, (i + 1) * sa), bi = b.data.subarray(i * sb, (i + 1) * sb);
      if (ga) ga.set(transA ? gemm(bi, gi, k, n, m, transB, true) : gemm(gi, bi, m, n, k, false, !transB), i * sa);
      if (gb) gb.set(transB ? gemm(gi, ai, n, m, k, true, transA) : gemm(ai, gi, k, m, n, !transA, false), i * sb);
    }
    if (ga) accumulateGrad(a, ga, true);
    if (gb) accumulateGrad(b, gb, true);
  };
  return out;
}

/**
 * y = x W^T + b (PyTorch `F.linear`): the bias rides in Gemm's C input, so the forward pass is
 * one native call and no [rows, out] broadcast pass runs in JavaScript.
 * @param x [..., in]
 * @param weight [out, in]
 * @param bias [out]
 * @returns [..., out]
 */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  if (bias === null) return matmul(x, weight, { transB: true });
  const inF = x.shape[x.ndim - 1]!, outF = weight.shape[0]!;
  if (weight.ndim !== 2 || weight.shape[1] !== inF || bias.size !== outF) {
    throw new Error(`linear: x ${shapeToString(x.shape)}, weight ${shapeToString(weight.shape)}, bias ${shapeToString(bias.shape)}`);
  }
  const m = x.size / inF;
  let y: Float32Array;
  if (m * inF * outF <= gemmSettings.smallProductThreshold || gemmSettings.forcePath === 'ts') {
    y = matmulRef(x.data, weight.data, m, inF, outF, false, true);
    for (let r = 0; r < m; r++) for (let j = 0; j < outF; j++) y[r * outF + j]! += bias.data[j]!;
  } else {
    y = gemmSession(false, true, true).run({
      A: { type: 'float32', data: x.data, dims: [m, inF] },
      B: { type: 'float32', data: weight.data, dims: [outF, inF] },
      C: { type: 'float32', data: bias.data, dims: [outF] },
    })['Y']!.data as Float32Array;
  }
  const out = result(y, [...x.shape.slice(0, -1), outF], [x, weight, bias], 'linear');
  out.backwardFn = () => {
    const g = out.grad!;
    if (x.requiresGrad) accumulateGrad(x, gemm(g, weight.data, m, outF, inF), true);
    linearParameterBackward(g, x.data, weight, bias, m, outF, inF); // after x's gradient read the weight
  };
  return out;
}

/**
 * The weight's and bias's part of y = x W^T + b's backward, G = dL/dy [m, out], x [m, in]: plain
 * SGD folded into the weight-gradient product where the pass allows it (`inBackwardRate`), else
 * the gradients accumulated. Updates the weight in place: call it after x's gradient is computed.
 */
export function linearParameterBackward(g: Float32Array, x: Float32Array, weight: Tensor, bias: Tensor, m: number, outF: number, inF: number): void {
  const rate = inBackwardRate(weight);
  let gb: Float32Array | null = null;
  if (rate !== undefined) gb = sgdWeightUpdate(g, x, weight.data, m, outF, inF, rate, bias.requiresGrad);
  else if (weight.requiresGrad) accumulateGrad(weight, gemm(g, x, outF, m, inF, true, false), true);
  if (bias.requiresGrad) {
    gb ??= columnSums(g, outF);
    const biasRate = inBackwardRate(bias);
    if (biasRate === undefined) accumulateGrad(bias, gb, true);
    else axpy(-biasRate, gb, bias.data);
  }
}

/** Sums of g [rows, cols] over its rows: a bias's gradient. */
function columnSums(g: Float32Array, cols: number): Float32Array {
  const out = new Float32Array(cols);
  for (let base = 0; base < g.length; base += cols) for (let j = 0; j < cols; j++) out[j]! += g[base + j]!;
  return out;
}

/** y += a * x (BLAS's axpy): plain SGD on a bias inside the backward pass. */
function axpy(a: number, x: Float32Array, y: Float32Array): void {
  for (let j = 0; j < y.length; j++) y[j]! += a * x[j]!;
}
