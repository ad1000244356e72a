/**
 * Predictions with their uncertainty, and the novelty threshold.
 *
 * What one prediction may depend on: CLAP's VGA attends over the whole batch (spec section 9), and
 * its T weight samples come from a generator. Here every input is predicted as its own batch (the
 * `single` evaluation batching) and every prediction starts the test-time noise from the same saved
 * generator state (one fixed Monte-Carlo ensemble, `fixedNoisePredictor`). So an input's output is a
 * function of the input and the classifier's state only: not of the other inputs, their order, or
 * how many predictions were made before.
 */
import { mcVariance, energyScore, predictiveEntropy } from '../eval/novelty.js';
import { fixedNoisePredictor, meanOverSamples, type Predictor } from '../run/evaluate.js';
import { Clap4ClipError } from '../util/errors.js';
import type { ModelState } from './core.js';
import type { ClassProbability, NoveltyCalibration, Prediction } from './types.js';

/** The per-input predictor of a state: batch of one, fixed noise. */
function singlePredictor(state: ModelState, what: string): Predictor {
  if (state.method === null || state.classes.length === 0) throw new Clap4ClipError(`${what}: the classifier has learned no classes yet (call learn first)`);
  return fixedNoisePredictor(state.method, state.noise);
}

/** Raw outputs of one input: mean logits [C], MC variance, energy. */
interface SingleOutput {
  meanLogits: Float32Array;
  mcVariance: number;
  energy: number;
}

/** logits / T (a copy; T = 1 returns the logits themselves). */
function scaled(logits: Float32Array, temperature: number): Float32Array {
  return temperature === 1 ? logits : logits.map((v) => v / temperature);
}

/**
 * Raw outputs of one input. `energy` is logsumexp of the mean logits, or with a calibration whose
 * novelty mode is `calibrated`, T logsumexp(z / T) (the temperature-scaled energy).
 */
function predictOne(predict: Predictor, feature: Float32Array, state: ModelState): SingleOutput {
  const p = predict(feature, 1);
  const meanLogits = meanOverSamples(p.logits, p.samples, 1, p.classes);
  const T = state.calibration?.novelty === 'calibrated' ? state.calibration.temperature : 1;
  return {
    meanLogits,
    mcVariance: p.samples > 1 ? mcVariance(p.logits, p.samples, 1, p.classes)[0]! : 0,
    energy: T * energyScore(scaled(meanLogits, T), 1, p.classes)[0]!,
  };
}

/** Mean logits [n, C] of n features [n, D] at T = 1, each input on its own (what a temperature is fitted to). */
export function rawMeanLogits(state: ModelState, features: Float32Array, n: number, what: string): Float32Array {
  const predict = singlePredictor(state, what);
  const D = features.length / n;
  const C = state.classes.length;
  const out = new Float32Array(n * C);
  for (let i = 0; i < n; i++) {
    const p = predict(features.subarray(i * D, (i + 1) * D), 1);
    out.set(meanOverSamples(p.logits, p.samples, 1, p.classes), i * C);
  }
  return out;
}

/** Softmax of one row, in float64. */
function softmax(logits: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of logits) m = Math.max(m, v);
  const out = new Float64Array(logits.length);
  let z = 0;
  for (let j = 0; j < logits.length; j++) z += out[j] = Math.exp(logits[j]! - m);
  for (let j = 0; j < logits.length; j++) out[j]! /= z;
  return out;
}

/**
 * Predictions of n features [n, D] (unit norm), each on its own. Once `calibrate` has fitted a
 * temperature T, probabilities and entropy are those of softmax(mean logits / T) and `calibrated`
 * is true; the order of the classes (and the top label) is the same either way.
 * @param topK classes listed per input (capped at C)
 */
export function predictFeatures(state: ModelState, features: Float32Array, n: number, topK: number): Prediction[] {
  const predict = singlePredictor(state, 'predict');
  const D = features.length / n;
  const C = state.classes.length;
  const k = Math.min(topK, C);
  const out: Prediction[] = [];
  for (let i = 0; i < n; i++) {
    const o = predictOne(predict, features.subarray(i * D, (i + 1) * D), state);
    const logits = scaled(o.meanLogits, state.calibration?.temperature ?? 1);
    const probs = softmax(logits);
    // Most probable first; a tie keeps label order (the earlier-learned class first).
    const order = Array.from({ length: C }, (_, j) => j).sort((a, b) => probs[b]! - probs[a]! || a - b);
    const top: ClassProbability[] = order.slice(0, k).map((j) => ({ label: state.classes[j]!, probability: probs[j]! }));
    const noveltyScore = -o.energy;
    out.push({
      top,
      calibrated: state.calibration !== null,
      entropy: predictiveEntropy(logits, 1, C)[0]!,
      mcVariance: o.mcVariance,
      noveltyScore,
      isNovel: state.novelty === null ? null : noveltyScore > state.novelty.threshold,
    });
  }
  return out;
}

/** Novelty scores (-energy, higher = more novel) of n features [n, D], in the state's novelty mode. */
export function noveltyScores(state: ModelState, features: Float32Array, n: number): Float64Array {
  const predict = singlePredictor(state, 'calibrateNovelty');
  const D = features.length / n;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = -predictOne(predict, features.subarray(i * D, (i + 1) * D), state).energy;
  return out;
}

/**
 * The smallest threshold that keeps at least `truePositiveRate` of the held-out known scores at or
 * below it: the ceil(rate * n)-th smallest score. `isNovel` = score > threshold, so on these
 * inputs the share not flagged is ceil(rate * n) / n (more with ties), the rate rounded up.
 */
export function thresholdAtRate(scores: Float64Array, truePositiveRate: number): NoveltyCalibration {
  if (typeof truePositiveRate !== 'number' || !(truePositiveRate > 0 && truePositiveRate <= 1)) {
    throw new Clap4ClipError(`calibrateNovelty: truePositiveRate must be in (0, 1], got ${String(truePositiveRate)}`);
  }
  const n = scores.length;
  const sorted = Float64Array.from(scores).sort();
  // The 1e-9 keeps 0.95 * 20 = 19 from rounding up to 20 when the product lands a hair above.
  const k = Math.min(n, Math.max(1, Math.ceil(truePositiveRate * n - 1e-9)));
  const threshold = sorted[k - 1]!;
  let kept = 0;
  for (const s of scores) if (s <= threshold) kept++;
  return { threshold, truePositiveRate: kept / n, samples: n };
}
