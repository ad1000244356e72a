/**
 * Fused operations where profiling showed primitive compositions spending more time in
 * JavaScript loops and allocations than in arithmetic. Each is tested against its primitive
 * composition (`fused.test.ts`).
 */
import { accumulateGrad, result, shapeToString, Tensor } from '../tensor.js';
import { GraphBuilder, attr } from '../onnx/onnxModel.js';
import { cachedSession } from '../onnx/runtime.js';
import { gelu, softplus } from './elementwise.js';

/**
 * Reparameterized samples of Gaussian class weights, w^(r) = h + mu + sigma * eps^(r)
 * (spec section 3: z = mu + sigma * eps, w = h + z), in one pass over [T, C, D].
 * The composition of broadcasts would expand h, mu and sigma to [T, C, D] and sum them back in
 * backward: five extra passes over a million values per CLAP step.
 *
 * @param h adapted text features [C, D] (pass null when the weights are z alone)
 * @param mu means [C, D]
 * @param sigma standard deviations [C, D]
 * @param eps standard normal noise [T, C, D] (no gradient)
 * @returns w [T, C, D]
 */
export function sampleGaussianWeights(h: Tensor | null, mu: Tensor, sigma: Tensor, eps: Float32Array, samples: number): Tensor {
  const cd = mu.size;
  if (sigma.size !== cd || (h && h.size !== cd) || eps.length !== samples * cd) {
    throw new Error(`sampleGaussianWeights: mu ${shapeToString(mu.shape)}, sigma ${shapeToString(sigma.shape)}, eps of ${eps.length} values for T = ${samples}`);
  }
  const md = mu.data, sd = sigma.data, hd = h?.data;
  const w = new Float32Array(samples * cd);
  for (let r = 0; r < samples; r++) {
    const off = r * cd;
    if (hd) for (let i = 0; i < cd; i++) w[off + i] = hd[i]! + md[i]! + sd[i]! * eps[off + i]!;
    else for (let i = 0; i < cd; i++) w[off + i] = md[i]! + sd[i]! * eps[off + i]!;
  }
  const parents = h ? [h, mu, sigma] : [mu, sigma];
  const out = result(w, [samples, ...mu.shape], parents, 'sampleGaussianWeights');
  out.backwardFn = () => {
    const g = out.grad!;
    const gSum = new Float32Array(cd);
    const gSigma = new Float32Array(cd);
    for (let r = 0; r < samples; r++) {
      const off = r * cd;
      for (let i = 0; i < cd; i++) {
        const gi = g[off + i]!;
        gSum[i]! += gi;
        gSigma[i]! += gi * eps[off + i]!;
      }
    }
    if (h) accumulateGrad(h, gSum);
    // h (if any) has copied or added gSum already, so mu may keep the buffer.
    accumulateGrad(mu, gSum, true);
    accumulateGrad(sigma, gSigma, true);
  };
  return out;
}

/** Elementwise maps at least this large run GELU and softplus in onnxruntime (vectorized erf, exp, log). */
export const fusedSettings = { geluOnnxMinSize: 4096, forceGeluPath: null as null | 'onnx' | 'ts' };

/**
 * A unary op whose value and derivative come from one onnxruntime graph: the backward pass is then
 * one multiply. `build` adds nodes computing outputs 'Y' and 'dYdX' from input 'X'.
 */
function onnxUnaryWithDerivative(key: string, build: (g: GraphBuilder) => void, fallback: (x: Tensor) => Tensor) {
  return (x: Tensor): Tensor => {
    const useOnnx = (fusedSettings.forceGeluPath ?? (x.size >= fusedSettings.geluOnnxMinSize ? 'onnx' : 'ts')) === 'onnx';
    if (!useOnnx) return fallback(x);
    const session = cachedSession(key, () => {
      const g = new GraphBuilder(key);
      g.input('X', 'float32', ['N']);
      build(g);
      g.output('Y', 'float32', ['N']);
      g.output('dYdX', 'float32', ['N']);
      return g.toBytes();
    });
    const outs = session.run({ X: { type: 'float32', data: x.data, dims: [x.size] } });
    const y = outs['Y']!.data as Float32Array;
    const dydx = outs['dYdX']!.data as Float32Array;
    const out = result(y, x.shape, [x], key);
    out.backwardFn = () => {
      const g = out.grad!;
      const gx = new Float32Array(g.length);
      for (let i = 0; i < g.length; i++) gx[i] = g[i]! * dydx[i]!;
      accumulateGrad(x, gx, true);
    };
    return out;
  };
}

/**
 * Exact (erf) GELU, x Phi(x), with derivative Phi(x) + x phi(x), computed in onnxruntime for large
 * inputs (Math.exp costs ~20 ns in JavaScript; the feed-forward block applies GELU to [C, 2048]).
 */
export const geluFused = onnxUnaryWithDerivative('gelu', (g) => {
  const erfIn = g.node('Mul', ['X', g.constFloat([Math.SQRT1_2])]);
  const phi = g.node('Mul', [g.node('Add', [g.node('Erf', [erfIn]), g.constFloat([1])]), g.constFloat([0.5])]);
  g.node('Mul', ['X', phi], {}, ['Y']);
  const sq = g.node('Mul', ['X', 'X']);
  const pdf = g.node('Mul', [g.node('Exp', [g.node('Mul', [sq, g.constFloat([-0.5])])]), g.constFloat([1 / Math.sqrt(2 * Math.PI)])]);
  g.node('Add', [phi, g.node('Mul', ['X', pdf])], {}, ['dYdX']);
}, gelu);

/**
 * softplus(x) = log(1 + e^x) with derivative sigmoid(x), in onnxruntime for large inputs (the
 * distribution encoders' sigma over [C, D]). Above 20 it is linear, as PyTorch's threshold.
 */
export const softplusFused = onnxUnaryWithDerivative('softplus', (g) => {
  const big = g.node('Greater', ['X', g.constFloat([20])]);
  g.node('Where', [big, 'X', g.node('Softplus', ['X'])], {}, ['Y']);
  g.node('Sigmoid', ['X'], {}, ['dYdX']);
}, softplus);

function sampledLogitsSessions() {
  const forward = cachedSession('sampled-logits-forward', () => {
    // W = M + S * EPS ([T, C, D]); logits[t, b, c] = scale * f[b] . W[t, c]
    const g = new GraphBuilder('sampledLogitsForward');
    g.input('F', 'float32', ['B', 'D']);
    g.input('M', 'float32', ['C', 'D']);
    g.input('S', 'float32', ['C', 'D']);
    g.input('EPS', 'float32', ['T', 'C', 'D']);
    g.input('SCALE', 'float32', []);
    g.input('SHAPE_BTC', 'int64', [3]);
    const w = g.node('Add', [g.node('Mul', ['S', 'EPS']), 'M']);
    const w2 = g.node('Flatten', [w], { axis: attr.int(2) }); // [T*C, D]
    const y = g.node('Gemm', ['F', w2], { transB: attr.int(1) });
    const yScaled = g.node('Mul', [y, 'SCALE']);
    const y3 = g.node('Reshape', [yScaled, 'SHAPE_BTC']);
    g.node('Transpose', [y3], { perm: attr.ints([1, 0, 2]) }, ['LOGITS']);
    g.output('LOGITS', 'float32', ['T', 'B', 'C']);
    return g.toBytes();
  });
  const backward = cachedSession('sampled-logits-backward', () => {
    // dW = scale * dL^T f; dM = sum_t dW; dS = sum_t dW * EPS
    const g = new GraphBuilder('sampledLogitsBackward');
    g.input('DL', 'float32', ['T', 'B', 'C']);
    g.input('F', 'float32', ['B', 'D']);
    g.input('EPS', 'float32', ['T', 'C', 'D']);
    g.input('SCALE', 'float32', []);
    g.input('SHAPE_TCD', 'int64', [3]);
    const dlBT = g.node('Transpose', ['DL'], { perm: attr.ints([1, 0, 2]) });
    const dl2 = g.node('Reshape', [dlBT, g.constInt64([0, -1])]);
    const dw = g.node('Gemm', [dl2, 'F'], { transA: attr.int(1), alpha: attr.float(1) });
    const dw3 = g.node('Mul', [g.node('Reshape', [dw, 'SHAPE_TCD']), 'SCALE']);
    const axes = g.constInt64([0]);
    g.node('ReduceSum', [dw3, axes], { keepdims: attr.int(0) }, ['DM']);
    g.node('ReduceSum', [g.node('Mul', [dw3, 'EPS']), axes], { keepdims: attr.int(0) }, ['DS']);
    g.output('DM', 'float32', ['C', 'D']);
    g.output('DS', 'float32', ['C', 'D']);
    return g.toBytes();
  });
  return { forward, backward };
}

/**
 * Logits of Gaussian-sampled class weights in one onnxruntime graph each way (the CLAP head):
 * W^(r) = center + sigma * eps^(r), logits[r, b, c] = scale * f[b] . W^(r)[c].
 * Equal to `sampleGaussianWeights` + `matmul` + permute, without the [T, C, D] sample tensor
 * ever reaching JavaScript.
 *
 * @param f image features [B, D] (frozen: no gradient flows to them)
 * @param center h + mu [C, D]
 * @param sigma [C, D]
 * @param eps standard normal noise [T, C, D]
 * @returns logits [T, B, C]
 */
export function sampledLogits(f: Tensor, center: Tensor, sigma: Tensor, eps: Float32Array, samples: number, scale: number): Tensor {
  if (f.requiresGrad) throw new Error('sampledLogits: image features are frozen inputs; use sampleGaussianWeights + matmul to differentiate them');
  const [B, D] = f.shape as [number, number];
  const C = center.shape[0]!;
  if (center.ndim !== 2 || center.shape[1] !== D || sigma.size !== center.size || eps.length !== samples * C * D) {
    throw new Error(`sampledLogits: f ${shapeToString(f.shape)}, center ${shapeToString(center.shape)}, sigma ${shapeToString(sigma.shape)}, eps of ${eps.length} values for T = ${samples}`);
  }
  const { forward, backward } = sampledLogitsSessions();
  const scaleFeed = { type: 'float32' as const, data: Float32Array.of(scale), dims: [] };
  const epsFeed = { type: 'float32' as const, data: eps, dims: [samples, C, D] };
  const shapeTCD = { type: 'int64' as const, data: BigInt64Array.of(BigInt(samples), BigInt(C), BigInt(D)), dims: [3] };
  const y = forward.run({
    F: { type: 'float32', data: f.data, dims: [B, D] },
    M: { type: 'float32', data: center.data, dims: [C, D] },
    S: { type: 'float32', data: sigma.data, dims: [C, D] },
    EPS: epsFeed,
    SCALE: scaleFeed,
    SHAPE_BTC: { type: 'int64', data: BigInt64Array.of(BigInt(B), BigInt(samples), BigInt(C)), dims: [3] },
  })['LOGITS']!.data as Float32Array;
  const out = result(y, [samples, B, C], [center, sigma], 'sampledLogits');
  out.backwardFn = () => {
    const grads = backward.run({
      DL: { type: 'float32', data: out.grad!, dims: [samples, B, C] },
      F: { type: 'float32', data: f.data, dims: [B, D] },
      EPS: epsFeed,
      SCALE: scaleFeed,
      SHAPE_TCD: shapeTCD,
    });
    accumulateGrad(center, grads['DM']!.data as Float32Array, true);
    accumulateGrad(sigma, grads['DS']!.data as Float32Array, true);
  };
  return out;
}
