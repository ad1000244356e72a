/**
 * Fused: unary maps whose value and derivative come from one onnxruntime graph.
 * Primitive twins: `gelu` and `softplus` (ops/elementwise.ts), which also serve inputs below
 * `fusedSettings.geluOnnxMinSize` (compared in `fused.test.ts`).
 */
import { GraphBuilder } from '../../onnx/onnxModel.js';
import { cachedSession } from '../../onnx/runtime.js';
import { accumulateGrad, result, Tensor } from '../../tensor.js';
import { gelu, multiplyInPlace, softplus } from '../elementwise.js';
import { dropoutWithMask } from '../nnOps.js';

/**
 * Inputs at least this large run GELU and softplus (`geluOnnxMinSize`), cross-entropy's softmax
 * (`crossEntropyOnnxMinSize`) and layer normalization (`layerNormOnnxMinSize`) in onnxruntime
 * (vectorized erf, exp, log, reductions); the force settings pin a path (tests).
 */
export const fusedSettings = {
  geluOnnxMinSize: 4096,
  forceGeluPath: null as null | 'onnx' | 'ts',
  crossEntropyOnnxMinSize: 4096,
  forceCrossEntropyPath: null as null | 'onnx' | 'ts',
  layerNormOnnxMinSize: 4096,
  forceLayerNormPath: null as null | 'onnx' | 'ts',
};

/**
 * A unary op whose value and derivative come from one onnxruntime graph: the backward pass is then
 * one multiply. `build` adds nodes computing outputs `y` and `dydx` from input 'X'. With a dropout
 * mask (0 or 1/(1-p) per element, `dropoutMask`), the op is dropout(f(x)) in the same graph: the
 * mask scales both outputs, so no [.., F] pass of its own runs in JavaScript either way.
 */
function onnxUnaryWithDerivative(key: string, build: (g: GraphBuilder, y: string, dydx: string) => void, fallback: (x: Tensor) => Tensor) {
  return (x: Tensor, mask: Float32Array | null = null): Tensor => {
    if (mask !== null && mask.length !== x.size) throw new Error(`${key}: dropout mask of ${mask.length} values for ${x.size} inputs`);
    const useOnnx = (fusedSettings.forceGeluPath ?? (x.size >= fusedSettings.geluOnnxMinSize ? 'onnx' : 'ts')) === 'onnx';
    if (!useOnnx) return mask === null ? fallback(x) : dropoutWithMask(fallback(x), mask);
    const masked = mask !== null;
    const session = cachedSession(`${key}${masked ? ':masked' : ''}`, () => {
      const g = new GraphBuilder(key);
      g.input('X', 'float32', ['N']);
      if (masked) {
        g.input('MASK', 'float32', ['N']);
        build(g, 'Y0', 'dYdX0');
        g.node('Mul', ['Y0', 'MASK'], {}, ['Y']);
        g.node('Mul', ['dYdX0', 'MASK'], {}, ['dYdX']);
      } else build(g, 'Y', 'dYdX');
      g.output('Y', 'float32', ['N']);
      g.output('dYdX', 'float32', ['N']);
      return g.toBytes();
    });
    const feeds: Parameters<typeof session.run>[0] = { X: { type: 'float32', data: x.data, dims: [x.size] } };
    if (masked) feeds['MASK'] = { type: 'float32', data: mask, dims: [x.size] };
    const outs = session.run(feeds);
    const y = outs['Y']!.data as Float32Array;
    const dydx = outs['dYdX']!.data as Float32Array;
    const out = result(y, x.shape, [x], key);
    out.backwardFn = () => accumulateGrad(x, multiplyInPlace(out.grad!, dydx), true);
    return out;
  };
}

/**
 * Exact (erf) GELU, x Phi(x), with derivative Phi(x) + x phi(x), computed in onnxruntime for large
 * inputs (Math.exp costs ~20 ns in JavaScript; the feed-forward block applies GELU to [C, 2048]).
 */
export const geluFused = onnxUnaryWithDerivative('gelu', (g, yName, dName) => {
  const erfIn = g.node('Mul', ['X', g.constFloat([Math.SQRT1_2])]);
  const phi = g.node('Mul', [g.node('Add', [g.node('Erf', [erfIn]), g.constFloat([1])]), g.constFloat([0.5])]);
  g.node('Mul', ['X', phi], {}, [yName]);
  const sq = g.node('Mul', ['X', 'X']);
  const pdf = g.node('Mul', [g.node('Exp', [g.node('Mul', [sq, g.constFloat([-0.5])])]), g.constFloat([1 / Math.sqrt(2 * Math.PI)])]);
  g.node('Add', [phi, g.node('Mul', ['X', pdf])], {}, [dName]);
}, gelu);

/**
 * softplus(x) = log(1 + e^x) with derivative sigmoid(x), in onnxruntime for large inputs (the
 * distribution encoders' sigma over [C, D]). Above 20 it is linear, as PyTorch's threshold.
 */
export const softplusFused = onnxUnaryWithDerivative('softplus', (g, yName, dName) => {
  const big = g.node('Greater', ['X', g.constFloat([20])]);
  g.node('Where', [big, 'X', g.node('Softplus', ['X'])], {}, [yName]);
  g.node('Sigmoid', ['X'], {}, [dName]);
}, softplus);
