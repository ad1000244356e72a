/**
 * Evaluation after a task (spec section 7): top-1 accuracy of every seen task over all seen
 * classes, prediction = argmax softmax(mean over T of the logits), and ECE (15 bins) both as the
 * mean of per-batch ECEs (the reference's number) and over the whole test set (the honest one).
 *
 * How test samples are grouped into batches matters for CLAP (its VGA attends over the whole
 * batch), so batching is one explicit function: `per-task` (the reference: each batch holds one
 * task's images). Other modes (`mixed`, `single`) plug in at `evalBatches`.
 */
import type { FeaturesSplit } from '../data/types.js';
import { ece, softmaxConfidences } from '../eval/calibration.js';
import type { Method } from '../methods/method.js';
import type { EvalBatching } from './config.js';

/** One test batch: sample indices into the test split, all from one task in `per-task` mode. */
export interface EvalBatch {
  indices: Int32Array;
}

/** Each batch holds `batchSize` consecutive test samples of a single task (last batch may be short). */
export function perTaskBatches(testIndices: readonly Int32Array[], seenTasks: number, batchSize: number): EvalBatch[] {
  const batches: EvalBatch[] = [];
  for (let k = 0; k < seenTasks; k++) {
    const idx = testIndices[k]!;
    for (let s = 0; s < idx.length; s += batchSize) batches.push({ indices: idx.subarray(s, Math.min(idx.length, s + batchSize)) });
  }
  return batches;
}

/** The test batches after `seenTasks` tasks under `mode`. */
export function evalBatches(mode: EvalBatching, testIndices: readonly Int32Array[], seenTasks: number, batchSize: number): EvalBatch[] {
  switch (mode) {
    case 'per-task':
      return perTaskBatches(testIndices, seenTasks, batchSize);
  }
}

/**
 * Features of `indices`, one view each (view 0 = the image itself unless `views` says otherwise).
 * @returns [n, D]
 */
export function gatherFeatures(split: FeaturesSplit, indices: ArrayLike<number>, views?: ArrayLike<number>): Float32Array {
  const { dim: D, views: V, features } = split;
  const out = new Float32Array(indices.length * D);
  for (let i = 0; i < indices.length; i++) {
    const o = (indices[i]! * V + (views ? views[i]! : 0)) * D;
    out.set(features.subarray(o, o + D), i * D);
  }
  return out;
}

/**
 * Mean over the T samples of a prediction's logits.
 * @param logits [T, n, C] @returns [n, C]
 */
export function meanOverSamples(logits: Float32Array, samples: number, n: number, classes: number): Float32Array {
  const size = n * classes;
  if (logits.length !== samples * size) throw new Error(`meanOverSamples: ${logits.length} logits for [${samples}, ${n}, ${classes}]`);
  if (samples === 1) return logits;
  const out = new Float32Array(size);
  for (let s = 0; s < samples; s++) for (let i = 0; i < size; i++) out[i]! += logits[s * size + i]!;
  for (let i = 0; i < size; i++) out[i]! /= samples;
  return out;
}

export interface StepEvaluation {
  /** A[t][k] for k = 0..t: accuracy on task k's test samples. */
  accuracies: number[];
  /** Mean over test batches of each batch's ECE. */
  ecePerBatchMean: number;
  /** ECE over all test samples of the seen tasks. */
  eceDataset: number;
}

/**
 * Evaluate `method` on `batches` of the test split.
 * @param labels incremental label of every test sample
 * @param taskOf task owning each incremental label
 */
export function evaluateStep(
  method: Method,
  split: FeaturesSplit,
  labels: Int32Array,
  taskOf: Int32Array,
  seenTasks: number,
  batches: readonly EvalBatch[],
  onBatch?: () => void,
): StepEvaluation {
  const hits = new Float64Array(seenTasks);
  const counts = new Float64Array(seenTasks);
  const allConf: number[] = [];
  const allCorrect: boolean[] = [];
  let batchEceSum = 0;
  for (const batch of batches) {
    const n = batch.indices.length;
    const p = method.predict(gatherFeatures(split, batch.indices), n);
    const { confidence, prediction } = softmaxConfidences(meanOverSamples(p.logits, p.samples, n, p.classes), n, p.classes);
    const correct: boolean[] = [];
    for (let i = 0; i < n; i++) {
      const y = labels[batch.indices[i]!]!;
      const ok = prediction[i] === y;
      correct.push(ok);
      allConf.push(confidence[i]!);
      allCorrect.push(ok);
      const k = taskOf[y]!;
      counts[k]!++;
      if (ok) hits[k]!++;
    }
    batchEceSum += ece(confidence, correct, 15);
    onBatch?.();
  }
  const accuracies = Array.from({ length: seenTasks }, (_, k) => (counts[k]! > 0 ? hits[k]! / counts[k]! : 0));
  return {
    accuracies,
    ecePerBatchMean: batches.length > 0 ? batchEceSum / batches.length : 0,
    eceDataset: allConf.length > 0 ? ece(allConf, allCorrect, 15) : 0,
  };
}
