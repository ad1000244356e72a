/**
 * Fused: unary maps whose value and derivative come from one onnxruntime graph.
 * Primitive twins: `gelu` and `softplus` (ops/elementwise.ts), which also serve inputs below
 * `fusedSettings.geluOnnxMinSize` (compared in `fused.test.ts`).
 */
import { GraphBuilder } from '../../onnx/onnxModel.js';
import { cachedSession } from '../../onnx/runtime.js';
import { accumulateGrad, result, Tensor } from '../../tensor.js';
import { gelu, multiplyInPlace, softplus } from '../elementwise.js';

/**
 * Inputs at least this large run GELU and softplus (`geluOnnxMinSize`) and cross-entropy's softmax
 * (`crossEntropyOnnxMinSize`) in onnxruntime (vectorized erf, exp, log); the force settings pin a
 * path (tests).
 */
export const fusedSettings = {
  geluOnnxMinSize: 4096,
  forceGeluPath: null as null | 'onnx' | 'ts',
  crossEntropyOnnxMinSize: 4096,
  forceCrossEntropyPath: null as null | 'onnx' | 'ts',
};

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
    out.backwardFn = () => accumulateGrad(x, multiplyInPlace(out.grad!, dydx), true);
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
