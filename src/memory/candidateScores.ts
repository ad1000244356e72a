/**
 * The model's logits of one new class's candidate training samples, for the score-based exemplar
 * selectors (spec section 6: "selectors score candidates with the model in evaluation mode").
 *
 * Batching: the candidates of ONE class are predicted together, in dataset order, in consecutive
 * batches of `batchSize` (the evaluation batch size), view 0 (the image itself, no flip); the
 * class's last batch may be short. Why it matters: the VGA attends over the batch, so a score
 * depends on what is predicted with it. The reference runs memory and new samples through one
 * loader (training batch size, index order), so its batches mix classes in whatever way the dataset
 * order happens to interleave them. Class-pure batches make a candidate's score depend only on its
 * own class's candidates, which is also the only set its ranking is compared within.
 */
import type { Prediction } from '../methods/method.js';
import { Clap4ClipError } from '../util/errors.js';
import type { CandidateLogits } from './selectors.js';

/**
 * @param predict the model's prediction for n features [n, D] (evaluation mode)
 * @param featuresOf features [n, D] of training sample indices (view 0)
 * @param candidates the class's candidate sample indices
 * @returns logits [T, candidates.length, C] in candidate order
 */
export function candidateLogits(
  predict: (features: Float32Array, n: number) => Prediction,
  featuresOf: (indices: Int32Array) => Float32Array,
  candidates: Int32Array,
  batchSize: number,
): CandidateLogits {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Clap4ClipError(`candidateLogits: batch size must be an integer >= 1, got ${batchSize}`);
  const n = candidates.length;
  const parts: { offset: number; p: Prediction }[] = [];
  for (let s = 0; s < n; s += batchSize) {
    const idx = candidates.subarray(s, Math.min(n, s + batchSize));
    parts.push({ offset: s, p: predict(featuresOf(idx), idx.length) });
  }
  if (parts.length === 0) return { logits: new Float32Array(0), samples: 1, classes: 1 };
  const { samples: T, classes: C } = parts[0]!.p;
  // Each batch is [T, b, C]; the class's logits are [T, n, C]: copy row block (r, batch) into place.
  const logits = new Float32Array(T * n * C);
  for (const { offset, p } of parts) {
    if (p.samples !== T || p.classes !== C) throw new Clap4ClipError(`candidateLogits: batches disagree on [T, C] ([${T}, ${C}] vs [${p.samples}, ${p.classes}])`);
    const b = p.n;
    for (let r = 0; r < T; r++) logits.set(p.logits.subarray(r * b * C, (r + 1) * b * C), (r * n + offset) * C);
  }
  return { logits, samples: T, classes: C };
}
