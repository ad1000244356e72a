/**
 * Fused: the CLAP head, sampled class weights times image features, in one onnxruntime graph each
 * way. Primitive twin: `sampleGaussianWeights` + `matmul` + `mulScalar` + `permute` (compared in
 * `fused.test.ts`; the model's global-task path still takes that composition).
 */
import { attr, GraphBuilder } from '../../onnx/onnxModel.js';
import { cachedSession } from '../../onnx/runtime.js';
import { accumulateGrad, result, shapeToString, Tensor } from '../../tensor.js';

function sampledLogitsSessions() {
  const forward = cachedSession('sampled-logits-forward', () => {
    // logits[t, b, c] = scale * (f[b] . M[c] + f[b] . (S * EPS[t])[c]): the mean's product is
    // [B, C] once, so only S * EPS crosses the [T, C, D] samples (one pass, not two).
    const g = new GraphBuilder('sampledLogitsForward');
    g.input('F', 'float32', ['B', 'D']);
    g.input('M', 'float32', ['C', 'D']);
    g.input('S', 'float32', ['C', 'D']);
    g.input('EPS', 'float32', ['T', 'C', 'D']);
    g.input('SCALE', 'float32', []);
    g.input('SHAPE_BTC', 'int64', [3]);
    const noise = g.node('Flatten', [g.node('Mul', ['S', 'EPS'])], { axis: attr.int(2) }); // [T*C, D]
    const yNoise = g.node('Reshape', [g.node('Gemm', ['F', noise], { transB: attr.int(1) }), 'SHAPE_BTC']); // [B, T, C]
    const yMean = g.node('Unsqueeze', [g.node('Gemm', ['F', 'M'], { transB: attr.int(1) }), g.constInt64([1])]); // [B, 1, C]
    const y = g.node('Mul', [g.node('Add', [yNoise, yMean]), 'SCALE']);
    g.node('Transpose', [y], { perm: attr.ints([1, 0, 2]) }, ['LOGITS']);
    g.output('LOGITS', 'float32', ['T', 'B', 'C']);
    return g.toBytes();
  });
  const backward = cachedSession('sampled-logits-backward', () => {
    // With G = scale * dL [T, B, C] (scaled on the small side): dM = (sum_t G[t])^T f, a [C, B] x
    // [B, D] product; dS = sum_t (G[t]^T f) * EPS[t].
    const g = new GraphBuilder('sampledLogitsBackward');
    g.input('DL', 'float32', ['T', 'B', 'C']);
    g.input('F', 'float32', ['B', 'D']);
    g.input('EPS', 'float32', ['T', 'C', 'D']);
    g.input('SCALE', 'float32', []);
    g.input('SHAPE_TCD', 'int64', [3]);
    const dl = g.node('Mul', ['DL', 'SCALE']);
    const axes = g.constInt64([0]);
    g.node('Gemm', [g.node('ReduceSum', [dl, axes], { keepdims: attr.int(0) }), 'F'], { transA: attr.int(1) }, ['DM']);
    const dlBT = g.node('Reshape', [g.node('Transpose', [dl], { perm: attr.ints([1, 0, 2]) }), g.constInt64([0, -1])]); // [B, T*C]
    const dw = g.node('Reshape', [g.node('Gemm', [dlBT, 'F'], { transA: attr.int(1) }), 'SHAPE_TCD']); // [T, C, D]
    g.node('ReduceSum', [g.node('Mul', [dw, 'EPS']), axes], { keepdims: attr.int(0) }, ['DS']);
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
