/**
 * Post-hoc calibration of a run (Guo et al. 2017 temperature scaling), per step:
 *
 *   1. the calibration set: with `holdout`, `calibrationPerClass` training samples of every class
 *      of the seen tasks, drawn once per run and never trained on nor put in the memory; with
 *      `memory`, the exemplar memory after the task (samples the model trained on);
 *   2. its mean logits from the step's own predictor (the same fixed Monte-Carlo ensemble the test
 *      set is scored with, so no generator moves), and T fitted to their labels;
 *   3. the test predictions' ECE (dataset-level and per-batch mean), NLL, Brier score and
 *      reliability bins at T = 1 (raw) and at the fitted T (calibrated).
 *
 * Accuracy never changes (T > 0 keeps every argmax) and novelty scores stay on the raw logits.
 *
 * Why a hold-out set and why it is kept across tasks: a temperature fitted on samples the model
 * was trained on (the memory) is fitted to over-confident outputs and comes out too low. The
 * held-out samples of earlier tasks stay available, like the memory, so that T is fitted on all
 * classes the step predicts; their number is recorded in results.json.
 *
 * The draw uses the initial state of the `calibration` stream (`cl/streams.ts`) and the batch
 * order of the calibration set a fixed fork of it: both are functions of the seed and the
 * scenario, so a resumed run holds out and batches exactly what an uninterrupted one does.
 */
import type { Scenario } from '../data/scenario.js';
import type { FeaturesSplit } from '../data/types.js';
import { ece, perBatchMeanEce, reliabilityBins, type ReliabilityBin } from '../eval/calibration.js';
import { brierScore, fitTemperature, negativeLogLikelihood, scaledConfidences } from '../eval/temperature.js';
import { Rng, type RngState } from '../engine/random.js';
import type { CalibrationSource, EvalBatching } from './config.js';
import { ECE_BINS, evalBatches, predictBatches, type PredictedBatches, type Predictor } from './evaluate.js';

/** Calibration quality of the test predictions at one temperature. */
export interface CalibrationMetrics {
  /** ECE over all test samples of the seen tasks (15 bins). */
  eceDataset: number;
  /** Mean over test batches of each batch's ECE (the reference's number). */
  ecePerBatchMean: number;
  /** Mean negative log-likelihood of the true labels (nats). */
  nll: number;
  /** Mean Brier score, sum over classes of (p - onehot)^2, in [0, 2]. */
  brier: number;
  /** The 15 reliability bins behind `eceDataset` (counts sum to the test samples). */
  bins: ReliabilityBin[];
}

/** One step's calibration: where T came from, T, and the test metrics before and after. */
export interface StepCalibration {
  step: number;
  source: Exclude<CalibrationSource, 'none'>;
  /** Samples T was fitted on. */
  samples: number;
  temperature: number;
  /** NLL of the calibration set at T = 1 and at the fitted T. */
  fitNll: { before: number; after: number };
  raw: CalibrationMetrics;
  calibrated: CalibrationMetrics;
}

/** The held-out rows of a run: per task, the rows kept out and the rows that still train. */
export interface HoldOut {
  /** Per task: training rows minus the held-out ones, in their original order. */
  trainRows: Int32Array[];
  /** Per task: held-out rows (random order within each class, classes in label order). */
  heldOut: Int32Array[];
  /** Fixed generator state ordering `mixed` calibration batches. */
  orderState: RngState;
}

/**
 * Holds out min(perClass, floor(n_c / 2)) random training rows of every class c of every task
 * (at most half, so a few-shot class still trains). `rng` is the calibration stream at its
 * initial state; the order state is forked from it after the draw.
 */
export function holdOutRows(scenario: Scenario, perClass: number, rng: Rng): HoldOut {
  const trainRows: Int32Array[] = [];
  const heldOut: Int32Array[] = [];
  for (const task of scenario.tasks) {
    const rows = scenario.trainIndices[task.index]!;
    const byClass = new Map<number, number[]>();
    for (const i of rows) {
      const y = scenario.trainLabels[i]!;
      let list = byClass.get(y);
      if (!list) byClass.set(y, (list = []));
      list.push(i);
    }
    const held = new Set<number>();
    const order: number[] = [];
    for (const y of [...byClass.keys()].sort((a, b) => a - b)) {
      const candidates = Int32Array.from(byClass.get(y)!);
      rng.shuffleInPlace(candidates);
      const k = Math.min(perClass, Math.floor(candidates.length / 2));
      for (const i of candidates.subarray(0, k)) {
        held.add(i);
        order.push(i);
      }
    }
    trainRows.push(Int32Array.from(Array.from(rows).filter((i) => !held.has(i))));
    heldOut.push(Int32Array.from(order));
  }
  return { trainRows, heldOut, orderState: rng.fork().state() };
}

/** Mean logits [n, C] and the labels [n] of predicted batches, in batch order. */
export function gatherLogits(predicted: PredictedBatches, labelOf: (index: number) => number): { logits: Float32Array; labels: Int32Array; rows: number } {
  const rows = predicted.batches.reduce((n, b) => n + b.indices.length, 0);
  const logits = new Float32Array(rows * predicted.classes);
  const labels = new Int32Array(rows);
  let r = 0;
  for (const b of predicted.batches) {
    logits.set(b.meanLogits, r * predicted.classes);
    for (const i of b.indices) labels[r++] = labelOf(i);
  }
  return { logits, labels, rows };
}

/** ECE (both), NLL, Brier and bins of predicted test batches at temperature T. */
export function calibrationMetrics(predicted: PredictedBatches, labelOf: (index: number) => number, temperature: number): CalibrationMetrics {
  const C = predicted.classes;
  const { logits, labels, rows } = gatherLogits(predicted, labelOf);
  const confidence = scaledConfidences(logits, rows, C, temperature);
  const correct = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    let arg = 0;
    for (let j = 1; j < C; j++) if (logits[r * C + j]! > logits[r * C + arg]!) arg = j;
    correct[r] = arg === labels[r] ? 1 : 0;
  }
  // Per-batch ECE over the evaluation's own batches (they may differ in size: the last one of a group is short).
  let batchSum = 0;
  let o = 0;
  for (const b of predicted.batches) {
    const n = b.indices.length;
    batchSum += perBatchMeanEce(confidence.subarray(o, o + n), correct.subarray(o, o + n), n, ECE_BINS);
    o += n;
  }
  return {
    eceDataset: ece(confidence, correct, ECE_BINS),
    ecePerBatchMean: batchSum / predicted.batches.length,
    nll: negativeLogLikelihood(logits, rows, C, labels, temperature),
    brier: brierScore(logits, rows, C, labels, temperature),
    bins: reliabilityBins(confidence, correct, ECE_BINS),
  };
}

export interface CalibrateStepInput {
  step: number;
  source: Exclude<CalibrationSource, 'none'>;
  /** The step's predictor (fixed noise: predicting more changes no generator). */
  predict: Predictor;
  train: FeaturesSplit;
  trainLabels: Int32Array;
  /** Calibration rows of the training split, one group per task (holdout) or one group (memory). */
  groups: readonly Int32Array[];
  evalBatching: EvalBatching;
  evalBatchSize: number;
  orderState: RngState;
  /** The step's predicted test batches and test labels. */
  test: PredictedBatches;
  testLabels: Int32Array;
}

/** Fits T on the calibration rows and measures the test predictions before and after. */
export function calibrateStep(input: CalibrateStepInput): StepCalibration {
  const batches = evalBatches(input.evalBatching, input.groups, input.evalBatchSize, Rng.fromState(input.orderState));
  if (batches.length === 0) throw new Error(`calibration after task ${input.step + 1}: no ${input.source} samples to fit the temperature on`);
  const predicted = predictBatches(input.predict, input.train, batches);
  const fitSet = gatherLogits(predicted, (i) => input.trainLabels[i]!);
  const fit = fitTemperature(fitSet.logits, fitSet.rows, predicted.classes, fitSet.labels);
  const labelOf = (i: number): number => input.testLabels[i]!;
  return {
    step: input.step,
    source: input.source,
    samples: fit.samples,
    temperature: fit.temperature,
    fitNll: { before: fit.nllBefore, after: fit.nllAfter },
    raw: calibrationMetrics(input.test, labelOf, 1),
    calibrated: calibrationMetrics(input.test, labelOf, fit.temperature),
  };
}
