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
