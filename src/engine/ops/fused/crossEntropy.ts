/**
 * Fused: mean cross-entropy whose softmax runs in onnxruntime (vectorized exp) for large inputs.
 * Primitive twin: `crossEntropy` (ops/nnOps.ts), which also serves inputs below
 * `fusedSettings.crossEntropyOnnxMinSize` (compared in `fused.test.ts`). CLAP's T x B sampled rows
 * of C logits spent ~1.3 ms of a step in JavaScript's Math.exp.
 */
import { GraphBuilder } from '../../onnx/onnxModel.js';
import { cachedSession } from '../../onnx/runtime.js';
import { accumulateGrad, result, Tensor } from '../../tensor.js';
import { checkTargets, crossEntropy, crossEntropyBackward } from '../nnOps.js';
import { fusedSettings } from './onnxUnary.js';

function softmaxSession() {
  return cachedSession('log-softmax-and-softmax', () => {
    const g = new GraphBuilder('logSoftmaxAndSoftmax');
    g.input('X', 'float32', ['N', 'C']);
    g.node('LogSoftmax', ['X'], {}, ['LOGP']);
    g.node('Exp', ['LOGP'], {}, ['P']);
    g.output('LOGP', 'float32', ['N', 'C']);
    g.output('P', 'float32', ['N', 'C']);
    return g.toBytes();
  });
}

/**
 * Mean cross-entropy of logits [N, C] against integer targets [N], as `crossEntropy`.
 * loss = -mean_r log softmax(x_r)[t_r]; d loss / dx_r = (softmax(x_r) - onehot(t_r)) / N.
 */
export function crossEntropyFused(logits: Tensor, targets: Int32Array | number[]): Tensor {
  const path = fusedSettings.forceCrossEntropyPath ?? (logits.size >= fusedSettings.crossEntropyOnnxMinSize ? 'onnx' : 'ts');
  if (path === 'ts' || logits.ndim === 0) return crossEntropy(logits, targets);
  const cols = logits.shape[logits.ndim - 1]!;
  const rows = checkTargets(logits, targets, cols);
  const outs = softmaxSession().run({ X: { type: 'float32', data: logits.data, dims: [rows, cols] } });
  const logp = outs['LOGP']!.data as Float32Array;
  const probs = outs['P']!.data as Float32Array;
  let loss = 0;
  for (let r = 0; r < rows; r++) loss -= logp[r * cols + targets[r]!]!;
  const out = result(Float32Array.of(loss / rows), [], [logits], 'crossEntropy');
  out.backwardFn = () => accumulateGrad(logits, crossEntropyBackward(probs, targets, cols, out.grad![0]! / rows), true);
  return out;
}
