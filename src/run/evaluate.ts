/**
 * Evaluation after a task (spec section 7): top-1 accuracy of every seen task over all seen
 * classes, prediction = argmax softmax(mean over T of the logits), ECE (15 bins) both as the mean
 * of per-batch ECEs (the reference's number) and over the whole test set (the honest one), and the
 * reliability bins behind the dataset-level ECE.
 *
 * Two things decide what a prediction may depend on, and both are explicit here:
 *
 * - Batching (`evalBatches`). CLAP's VGA attends over the whole batch, so an image's prediction
 *   depends on the images predicted with it (spec section 9). `per-task` is the reference: each
 *   batch holds one task's images, which leaks the task identity into the prediction. `mixed`
 *   shuffles the seen tasks' test samples together (seeded order) before cutting batches. `single`
 *   predicts every image alone: the only mode where a prediction is a function of the image.
 *
 * - Test-time noise (`ensemblePredictor`). A sampling method draws its T weight samples from the
 *   generator given to `predict`. Every prediction of one evaluation gets a generator started from
 *   the same state, so one evaluation scores every batch with the same T sampled heads
 *   (a fixed Monte-Carlo ensemble, drawn from a dedicated stream), and evaluating never draws from
 *   the training stream: turning novelty detection on, or changing the batching, leaves training
 *   unchanged, and in `single` mode the order of the test set changes nothing.
 */
import type { FeaturesSplit } from '../data/types.js';
import { gatherFeatures } from '../data/gatherFeatures.js';
import { ece, reliabilityBins, softmaxConfidences, type ReliabilityBin } from '../eval/calibration.js';
import { mcVariance } from '../eval/novelty.js';
import { meanOverGroups } from '../engine/groupMean.js';
import { Rng, type RngState } from '../engine/random.js';
import type { Method, Prediction } from '../methods/method.js';
import type { EvalBatching } from './config.js';

export const ECE_BINS = 15;

/** One test batch: sample indices into the test split, predicted together. */
export interface EvalBatch {
  indices: Int32Array;
}

/** Each batch holds `batchSize` consecutive samples of one group (last batch of a group may be short). */
export function perTaskBatches(groups: readonly Int32Array[], batchSize: number): EvalBatch[] {
  const batches: EvalBatch[] = [];
  for (const idx of groups) {
    for (let s = 0; s < idx.length; s += batchSize) batches.push({ indices: idx.subarray(s, Math.min(idx.length, s + batchSize)) });
  }
  return batches;
}

/** All groups' samples in one seeded random order, cut into batches of `batchSize`. */
export function mixedBatches(groups: readonly Int32Array[], batchSize: number, rng: Rng): EvalBatch[] {
  const all = new Int32Array(groups.reduce((n, g) => n + g.length, 0));
  let o = 0;
  for (const g of groups) {
    all.set(g, o);
    o += g.length;
  }
  rng.shuffleInPlace(all);
  return perTaskBatches([all], batchSize);
}

/** One sample per batch. */
export function singleBatches(groups: readonly Int32Array[]): EvalBatch[] {
  return groups.flatMap((g) => Array.from(g, (i) => ({ indices: Int32Array.of(i) })));
}

/**
 * The batches predicting `groups` (the test indices of some tasks, one array per task) under
 * `mode`. `orderRng` is only drawn from in `mixed` mode; pass a dedicated stream so the order
 * consumes no training randomness.
 */
export function evalBatches(mode: EvalBatching, groups: readonly Int32Array[], batchSize: number, orderRng: Rng): EvalBatch[] {
  switch (mode) {
    case 'per-task':
      return perTaskBatches(groups, batchSize);
    case 'mixed':
      return mixedBatches(groups, batchSize, orderRng);
    case 'single':
      return singleBatches(groups);
  }
}

/**
 * Mean over the T samples of a prediction's logits.
 * @param logits [T, n, C] @returns [n, C]
 */
export function meanOverSamples(logits: Float32Array, samples: number, n: number, classes: number): Float32Array {
  const size = n * classes;
  if (logits.length !== samples * size) throw new Error(`meanOverSamples: ${logits.length} logits for [${samples}, ${n}, ${classes}]`);
  return samples === 1 ? logits : meanOverGroups(logits, samples);
}

/** Logits of n image features [n, D] over the seen classes (a `Method.predict`). */
export type Predictor = (features: Float32Array, n: number) => Prediction;

/**
 * `method.predict` with the test-time noise of one fixed Monte-Carlo ensemble: every call starts
 * a generator from the same state `noise`, so every call draws the same T sampled heads. A method
 * with its own `fixedNoisePredictor` (same numbers, with the batch-independent work done once)
 * provides it.
 */
export function fixedNoisePredictor(method: Method, noise: RngState): Predictor {
  return method.fixedNoisePredictor?.(noise) ?? ((features, n) => method.predict(features, n, Rng.fromState(noise)));
}

/** `fixedNoisePredictor` with a noise state forked from `stream` (one draw of the stream per ensemble). */
export function ensemblePredictor(method: Method, stream: Rng): Predictor {
  return fixedNoisePredictor(method, stream.fork().state());
}

/** What one batch's prediction gives per sample. */
export interface BatchOutput {
  /** Test sample indices of the batch. */
  indices: Int32Array;
  /** Mean over the T samples of the logits, [n, C]. */
  meanLogits: Float32Array;
  /** MC variance of the logits per sample ([n], mean over classes), null when T = 1. */
  mcVariance: Float64Array | null;
}

export interface PredictedBatches {
  /** C, the seen classes the logits cover. */
  classes: number;
  /** T, the Monte-Carlo samples of the method. */
  samples: number;
  batches: BatchOutput[];
}

/** Predict every batch (view 0 of each test image). */
export function predictBatches(predict: Predictor, split: FeaturesSplit, batches: readonly EvalBatch[], onBatch?: () => void): PredictedBatches {
  let classes = 0;
  let samples = 1;
  const out: BatchOutput[] = batches.map((batch) => {
    const n = batch.indices.length;
    const p = predict(gatherFeatures(split, batch.indices), n);
    classes = p.classes;
    samples = p.samples;
    const output: BatchOutput = {
      indices: batch.indices,
      meanLogits: meanOverSamples(p.logits, p.samples, n, p.classes),
      mcVariance: p.samples > 1 ? mcVariance(p.logits, p.samples, n, p.classes) : null,
    };
    onBatch?.();
    return output;
  });
  return { classes, samples, batches: out };
}

export interface StepEvaluation {
  /** A[t][k] for k = 0..t: accuracy on task k's test samples. */
  accuracies: number[];
  /** Mean over test batches of each batch's ECE. */
  ecePerBatchMean: number;
  /** ECE over all test samples of the seen tasks. */
  eceDataset: number;
  /** The 15 bins behind `eceDataset` (counts sum to the number of test samples). */
  reliability: ReliabilityBin[];
  /** Predicted incremental label per test sample index (-1 where not evaluated). */
  predictions: Int32Array;
}

/**
 * Accuracy per seen task, both ECEs and the reliability bins of predicted batches.
 * @param labels incremental label of every test sample
 * @param taskOf task owning each incremental label
 */
export function evaluateStep(predicted: PredictedBatches, labels: Int32Array, taskOf: Int32Array, seenTasks: number): StepEvaluation {
  const hits = new Float64Array(seenTasks);
  const counts = new Float64Array(seenTasks);
  const predictions = new Int32Array(labels.length).fill(-1);
  const allConf: number[] = [];
  const allCorrect: boolean[] = [];
  let batchEceSum = 0;
  for (const batch of predicted.batches) {
    const n = batch.indices.length;
    const { confidence, prediction } = softmaxConfidences(batch.meanLogits, n, predicted.classes);
    const correct: boolean[] = [];
    for (let i = 0; i < n; i++) {
      const y = labels[batch.indices[i]!]!;
      const ok = prediction[i] === y;
      predictions[batch.indices[i]!] = prediction[i]!;
      correct.push(ok);
      allConf.push(confidence[i]!);
      allCorrect.push(ok);
      const k = taskOf[y]!;
      counts[k]!++;
      if (ok) hits[k]!++;
    }
    batchEceSum += ece(confidence, correct, ECE_BINS);
  }
  const empty = allConf.length === 0;
  return {
    accuracies: Array.from({ length: seenTasks }, (_, k) => (counts[k]! > 0 ? hits[k]! / counts[k]! : 0)),
    ecePerBatchMean: predicted.batches.length > 0 ? batchEceSum / predicted.batches.length : 0,
    eceDataset: empty ? 0 : ece(allConf, allCorrect, ECE_BINS),
    reliability: empty ? [] : reliabilityBins(allConf, allCorrect, ECE_BINS),
    predictions,
  };
}
