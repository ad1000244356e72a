/**
 * Fused: layer normalization over the last axis in onnxruntime, both ways, optionally of a residual
 * sum with a dropped-out branch, LN(x + dropout(s)), as each of the decoder layer's three blocks
 * ends. The forward pass is ONNX's LayerNormalization, which also returns each row's mean and
 * 1/std; the backward pass is one vectorized graph for dx (= dz), ds (= dz * mask), dgamma and
 * dbeta. The TypeScript `layerNorm` took ~5 % of the CLAP step in scalar loops over [C, D], and
 * the residual's add and dropout multiplies ~2 % more (README, Performance).
 * Primitive twins: `layerNorm` and `layerNorm(add(x, dropoutWithMask(s, mask)))`, which also serve
 * inputs below `fusedSettings.layerNormOnnxMinSize` (compared in `fused.test.ts`).
 */
import { attr, GraphBuilder } from '../../onnx/onnxModel.js';
import { cachedSession } from '../../onnx/runtime.js';
import { accumulateGrad, result, shapeToString, Tensor } from '../../tensor.js';
import { add } from '../elementwise.js';
import { dropoutWithMask, layerNorm } from '../nnOps.js';
import { fusedSettings } from './onnxUnary.js';

/** No residual; z = x + s; or z = x + s * mask. */
type Residual = 'none' | 'add' | 'masked';

/** Adds the inputs of z and returns z's name. */
function residualInput(g: GraphBuilder, residual: Residual): string {
  g.input('X', 'float32', ['R', 'D']);
  if (residual === 'none') return 'X';
  g.input('S', 'float32', ['R', 'D']);
  if (residual === 'add') return g.node('Add', ['X', 'S']);
  g.input('MASK', 'float32', ['R', 'D']);
  return g.node('Add', ['X', g.node('Mul', ['S', 'MASK'])]);
}

function forwardSession(residual: Residual, eps: number) {
  return cachedSession(`layer-norm:forward:${residual}:${eps}`, () => {
    const g = new GraphBuilder('layerNormForward');
    const z = residualInput(g, residual);
    g.input('GAMMA', 'float32', ['D']);
    g.input('BETA', 'float32', ['D']);
    g.node('LayerNormalization', [z, 'GAMMA', 'BETA'], { axis: attr.int(-1), epsilon: attr.float(eps) }, ['Y', 'MEAN', 'RSTD']);
    g.output('Y', 'float32', ['R', 'D']);
    g.output('MEAN', 'float32', ['R', 1]);
    g.output('RSTD', 'float32', ['R', 1]);
    return g.toBytes();
  });
}

/**
 * z recomputed from the inputs (cheaper than keeping it); dz = rstd (gh - mean(gh) - zhat
 * mean(gh zhat)), gh = g gamma; dgamma = sum g zhat; dbeta = sum g; ds = dz (* mask).
 */
function backwardSession(residual: Residual) {
  return cachedSession(`layer-norm:backward:${residual}`, () => {
    const g = new GraphBuilder('layerNormBackward');
    g.input('G', 'float32', ['R', 'D']);
    const z = residualInput(g, residual);
    g.input('MEAN', 'float32', ['R', 1]);
    g.input('RSTD', 'float32', ['R', 1]);
    g.input('GAMMA', 'float32', ['D']);
    const zhat = g.node('Mul', [g.node('Sub', [z, 'MEAN']), 'RSTD']);
    const gh = g.node('Mul', ['G', 'GAMMA']);
    const lastAxis = { axes: attr.ints([-1]), keepdims: attr.int(1) }; // opset 17: ReduceMean's axes are an attribute
    const s1 = g.node('ReduceMean', [gh], lastAxis);
    const s2 = g.node('ReduceMean', [g.node('Mul', [gh, zhat])], lastAxis);
    g.node('Mul', [g.node('Sub', [g.node('Sub', [gh, s1]), g.node('Mul', [zhat, s2])]), 'RSTD'], {}, ['DZ']);
    if (residual === 'masked') g.node('Mul', ['DZ', 'MASK'], {}, ['DS']);
    const rows = g.constInt64([0]);
    g.node('ReduceSum', [g.node('Mul', ['G', zhat]), rows], { keepdims: attr.int(0) }, ['DGAMMA']);
    g.node('ReduceSum', ['G', rows], { keepdims: attr.int(0) }, ['DBETA']);
    g.output('DZ', 'float32', ['R', 'D']);
    if (residual === 'masked') g.output('DS', 'float32', ['R', 'D']);
    g.output('DGAMMA', 'float32', ['D']);
    g.output('DBETA', 'float32', ['D']);
    return g.toBytes();
  });
}

/**
 * @param x [..., D]  @param gamma [D]  @param beta [D]
 * @returns (x - mean) / sqrt(var + eps) * gamma + beta over the last axis (biased variance) [..., D]
 */
export function layerNormFused(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  return residualLayerNorm(x, null, null, gamma, beta, eps);
}

/**
 * LN(x + s * mask) (LN(x + s) without a mask; LN(x) without s), as `layerNormFused`.
 * @param x [..., D]  @param s [..., D] or null  @param mask dropout mask of s (`dropoutMask`) or null
 */
export function residualLayerNorm(x: Tensor, s: Tensor | null, mask: Float32Array | null, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  if (s !== null && (s.ndim !== x.ndim || s.shape.some((n, i) => n !== x.shape[i]))) throw new Error(`residualLayerNorm: branch ${shapeToString(s.shape)} for x ${shapeToString(x.shape)}`);
  if (mask !== null && (s === null || mask.length !== x.size)) throw new Error(`residualLayerNorm: a dropout mask of ${mask.length} values needs a branch of ${x.size}`);
  const path = fusedSettings.forceLayerNormPath ?? (x.size >= fusedSettings.layerNormOnnxMinSize ? 'onnx' : 'ts');
  const d = x.shape[x.ndim - 1] ?? 0;
  if (path === 'ts' || x.ndim === 0 || gamma.size !== d || beta.size !== d) {
    // The twin (it also reports bad shapes).
    const z = s === null ? x : add(x, mask === null ? s : dropoutWithMask(s, mask));
    return layerNorm(z, gamma, beta, eps);
  }
  const residual: Residual = s === null ? 'none' : mask === null ? 'add' : 'masked';
  const dims = [x.size / d, d];
  const feeds: Parameters<ReturnType<typeof forwardSession>['run']>[0] = { X: { type: 'float32', data: x.data, dims } };
  if (s !== null) feeds['S'] = { type: 'float32', data: s.data, dims };
  if (mask !== null) feeds['MASK'] = { type: 'float32', data: mask, dims };
  const outs = forwardSession(residual, eps).run({
    ...feeds,
    GAMMA: { type: 'float32', data: gamma.data, dims: [d] },
    BETA: { type: 'float32', data: beta.data, dims: [d] },
  });
  const mean = outs['MEAN']!.data as Float32Array, rstd = outs['RSTD']!.data as Float32Array;
  const out = result(outs['Y']!.data as Float32Array, x.shape, s === null ? [x, gamma, beta] : [x, s, gamma, beta], 'layerNorm');
  out.backwardFn = () => {
    const grads = backwardSession(residual).run({
      ...feeds,
      G: { type: 'float32', data: out.grad!, dims },
      MEAN: { type: 'float32', data: mean, dims: [dims[0]!, 1] },
      RSTD: { type: 'float32', data: rstd, dims: [dims[0]!, 1] },
      GAMMA: { type: 'float32', data: gamma.data, dims: [d] },
    });
    accumulateGrad(gamma, grads['DGAMMA']!.data as Float32Array, true);
    accumulateGrad(beta, grads['DBETA']!.data as Float32Array, true);
    const dz = grads['DZ']!.data as Float32Array;
    if (s !== null) accumulateGrad(s, residual === 'masked' ? grads['DS']!.data as Float32Array : dz, residual === 'masked' || !x.requiresGrad);
    accumulateGrad(x, dz, true);
  };
  return out;
}
