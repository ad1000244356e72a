/**
 * Novel data detection after a task (PhNDD, spec section 7): known = the test samples of the seen
 * tasks, novel = the test samples of every later task. Both go through the same prediction over
 * the seen classes (the method knows nothing else), batched as the evaluation is (`evalBatching`),
 * and each score separates them; the metrics (AUROC, AUPR with known as positive, FPR at 95 % TPR)
 * are the pure functions of `src/eval/novelty.ts`.
 *
 * Scores, all "higher = more likely known": energy (logsumexp of the mean logits), msp (maximum
 * softmax probability), entropy (minus the predictive entropy) and, for sampling methods only
 * (T > 1), mcVariance (minus the MC variance of the logits).
 */
import type { FeaturesSplit } from '../data/types.js';
import { aupr, auroc, energyScore, fpr95, mspScore, negEntropyScore } from '../eval/novelty.js';
import { downsampleCurve, rocCurve } from '../eval/roc.js';
import type { Rng } from '../engine/random.js';
import type { EvalBatching } from './config.js';
import { evalBatches, predictBatches, type PredictedBatches, type Predictor } from './evaluate.js';
import { silentProgress, type ProgressFactory } from './progress.js';

export const NOVELTY_SCORES = ['energy', 'msp', 'entropy', 'mcVariance'] as const;
export type NoveltyScore = (typeof NOVELTY_SCORES)[number];

/** ROC points kept per record (the report draws them; the metrics use every score). */
export const ROC_POINTS = 200;

export interface NoveltyMetrics {
  auroc: number;
  aupr: number;
  fpr95: number;
}

export interface NoveltyRecord extends NoveltyMetrics {
  /** The task after which detection was measured (0-based). */
  step: number;
  score: NoveltyScore;
  /** ROC curve (known positive), at most ROC_POINTS points from (0, 0) to (1, 1). */
  roc: { fpr: number[]; tpr: number[] };
}

/**
 * The predictions of every test sample (seen and later tasks) after `seenTasks` tasks, batched by
 * `mode`. `per-task` and `single` batches never mix tasks, so the seen tasks' batches are exactly
 * the evaluation's and their outputs (`evaluated`, same predictor) are reused; `mixed` shuffles
 * known and novel samples together, so it predicts everything again, in an order drawn from
 * `orderRng` (a stream of its own, so detection changes no other draw).
 */
export function predictKnownAndNovel(
  mode: EvalBatching,
  predict: Predictor,
  split: FeaturesSplit,
  testIndices: readonly Int32Array[],
  seenTasks: number,
  evaluated: PredictedBatches,
  opts: { batchSize: number; orderRng: Rng; progress?: ProgressFactory; label?: string },
): PredictedBatches {
  const reuse = mode !== 'mixed';
  const batches = evalBatches(mode, reuse ? testIndices.slice(seenTasks) : testIndices, opts.batchSize, opts.orderRng);
  const bar = (opts.progress ?? silentProgress)(opts.label ?? 'novelty', batches.length);
  const predicted = predictBatches(predict, split, batches, () => bar.tick());
  bar.done();
  if (!reuse) return predicted;
  return { classes: evaluated.classes, samples: evaluated.samples, batches: [...evaluated.batches, ...predicted.batches] };
}

/** Per-sample scores (higher = known) of every predicted sample, in batch order. */
export function sampleScores(predicted: PredictedBatches): { indices: Int32Array; scores: Map<NoveltyScore, Float64Array> } {
  const { classes: C, batches } = predicted;
  const total = batches.reduce((n, b) => n + b.indices.length, 0);
  const indices = new Int32Array(total);
  const scores = new Map<NoveltyScore, Float64Array>([
    ['energy', new Float64Array(total)],
    ['msp', new Float64Array(total)],
    ['entropy', new Float64Array(total)],
  ]);
  const withVariance = predicted.samples > 1 && batches.every((b) => b.mcVariance !== null);
  if (withVariance) scores.set('mcVariance', new Float64Array(total));
  let o = 0;
  for (const b of batches) {
    const n = b.indices.length;
    indices.set(b.indices, o);
    scores.get('energy')!.set(energyScore(b.meanLogits, n, C), o);
    scores.get('msp')!.set(mspScore(b.meanLogits, n, C), o);
    scores.get('entropy')!.set(negEntropyScore(b.meanLogits, n, C), o);
    if (withVariance) {
      const v = scores.get('mcVariance')!;
      for (let i = 0; i < n; i++) v[o + i] = -b.mcVariance![i]!;
    }
    o += n;
  }
  return { indices, scores };
}

/**
 * One record per score for the step: AUROC, AUPR, FPR95 and the downsampled ROC curve.
 * @param isKnown whether a test sample index belongs to a seen task
 */
export function noveltyRecords(step: number, predicted: PredictedBatches, isKnown: (testIndex: number) => boolean): NoveltyRecord[] {
  const { indices, scores } = sampleScores(predicted);
  const known = indices.map((i) => (isKnown(i) ? 1 : 0));
  const records: NoveltyRecord[] = [];
  for (const score of NOVELTY_SCORES) {
    const s = scores.get(score);
    if (s === undefined) continue;
    const pos = s.filter((_, j) => known[j] === 1);
    const neg = s.filter((_, j) => known[j] === 0);
    records.push({ step, score, auroc: auroc(pos, neg), aupr: aupr(pos, neg), fpr95: fpr95(pos, neg), roc: downsampleCurve(rocCurve(pos, neg), ROC_POINTS) });
  }
  return records;
}

/** Mean over steps of each score's metrics (scores without records are left out). */
export function noveltyMeans(records: readonly NoveltyRecord[]): Partial<Record<NoveltyScore, NoveltyMetrics>> {
  const out: Partial<Record<NoveltyScore, NoveltyMetrics>> = {};
  for (const score of NOVELTY_SCORES) {
    const rs = records.filter((r) => r.score === score);
    if (rs.length === 0) continue;
    const mean = (key: keyof NoveltyMetrics): number => rs.reduce((a, r) => a + r[key], 0) / rs.length;
    out[score] = { auroc: mean('auroc'), aupr: mean('aupr'), fpr95: mean('fpr95') };
  }
  return out;
}
