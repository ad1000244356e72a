/**
 * RAPF's forward pass and losses (linlany/RAPF `continual_clip/models.py`
 * `ClassIncrementalCLIP.forward`, `adaptation`; `main.py` `run_class_incremental`):
 *
 *   g(x) = normalize(A x)                       A: [D, D], nn.Linear(512, 512, bias=False)
 *   logits(x) = s g(x) . tt_c over the seen classes c, s = exp(logit_scale) = 100
 *   L = CE(logits of batch + pseudo-features, labels) + L_h        (L_h only when P is not empty)
 *   L_h = mean over the hard samples s_i of pair (o_i, n_i) of relu(g(s_i).tt_n - g(s_i).tt_o + margin)
 *   P = {(o, n) : |tt_o - tt_n|_2 < theta}, o old, n new                (`adaptation`, torch.cdist)
 *
 * The hard samples are left out of the CE (`forward` splits `edge_sample` off before the logits).
 */
import { add, crossEntropy, l2Normalize, matmul, mean, mul, mulScalar, relu, sub, sum, addScalar } from '../../engine/ops/index.js';
import { Tensor } from '../../engine/tensor.js';

/**
 * g(x) = normalize(x A^T).
 * @param x [n, D] @param adapter A [D, D] @returns [n, D]
 */
export function adapted(x: Tensor, adapter: Tensor): Tensor {
  return l2Normalize(matmul(x, adapter, { transB: true }));
}

/**
 * s g(x) tt^T.
 * @param g [n, D] @param text tt [C, D] @returns [n, C]
 */
export function rapfLogits(g: Tensor, text: Tensor, logitScale: number): Tensor {
  return mulScalar(matmul(g, text, { transB: true }), logitScale);
}

/**
 * mean_i relu(g_i . (tt_n_i - tt_o_i) + margin).
 * @param g adapted hard samples [m, D] @param own tt_o_i [m, D] @param nearest tt_n_i [m, D]
 */
export function hingeLoss(g: Tensor, own: Tensor, nearest: Tensor, margin: number): Tensor {
  return mean(relu(addScalar(sum(mul(g, sub(nearest, own)), [1]), margin)));
}

/** The CE (+ hinge) of one step: what `trainStep` minimizes. */
export interface RapfLossInput {
  /** Batch images followed by pseudo-features, [n, D], with their labels [n]. */
  ceInputs: Tensor;
  ceLabels: Int32Array;
  /** Hard samples [m, D] with their own and nearest classes' text rows, or null when P is empty. */
  hard: { samples: Tensor; own: Tensor; nearest: Tensor } | null;
  /** tt of the seen classes [C, D]. */
  text: Tensor;
  logitScale: number;
  margin: number;
}

export function rapfLoss(adapter: Tensor, input: RapfLossInput): { loss: Tensor; ce: Tensor; hinge: Tensor | null } {
  const ce = crossEntropy(rapfLogits(adapted(input.ceInputs, adapter), input.text, input.logitScale), input.ceLabels);
  if (input.hard === null) return { loss: ce, ce, hinge: null };
  const hinge = hingeLoss(adapted(input.hard.samples, adapter), input.hard.own, input.hard.nearest, input.margin);
  return { loss: add(ce, hinge), ce, hinge };
}

/**
 * P: pairs (o, n) with |tt_o - tt_n|_2 < threshold, o in [0, oldClasses), n in [oldClasses, classes),
 * in torch.nonzero's order over the [old, new] distance matrix (o major), float64 distances.
 * @param text tt [classes, D]
 */
export function hardPairs(text: Float32Array, oldClasses: number, classes: number, dim: number, threshold: number): [number, number][] {
  const pairs: [number, number][] = [];
  for (let o = 0; o < oldClasses; o++) {
    for (let n = oldClasses; n < classes; n++) {
      let d2 = 0;
      for (let i = 0; i < dim; i++) {
        const d = text[o * dim + i]! - text[n * dim + i]!;
        d2 += d * d;
      }
      if (Math.sqrt(d2) < threshold) pairs.push([o, n]);
    }
  }
  return pairs;
}
