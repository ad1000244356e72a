/**
 * One training phase of spec section 5 (learning a task, or class-balanced finetuning on the
 * memory): epochs of reshuffled batches, one random view per drawn sample, the learning rate set
 * before every iteration. Shared by the benchmark loop and the incremental classifier API.
 */
import { cosineLr, multiStepLr, warmupCosineLr } from '../engine/optim.js';
import type { Rng } from '../engine/random.js';
import type { FeaturesSplit } from '../data/types.js';
import type { Batch, Method, Phase, SgdSchedule } from '../methods/method.js';
import { Clap4ClipError } from '../util/errors.js';
import { gatherFeatures } from '../data/gatherFeatures.js';
import type { ProgressFactory } from '../run/progress.js';

/**
 * Learning rate of iteration k of S: warm-up + cosine, or cosine alone (spec section 5), or a
 * multi-step decay by epoch (k's epoch is floor(k epochs / S), as S = epochs * batches per epoch).
 */
export function scheduledLr(k: number, total: number, schedule: SgdSchedule): number {
  switch (schedule.shape) {
    case 'warmup-cosine': return warmupCosineLr(k, total, schedule.lr);
    case 'cosine': return cosineLr(k, total, schedule.lr);
    case 'multistep': {
      if (!(Number.isInteger(k) && k >= 0 && k < total)) throw new RangeError(`schedule: iteration k = ${k} outside [0, ${total})`);
      return multiStepLr(Math.floor((k * schedule.epochs) / total), schedule.lr, schedule.milestones ?? [], schedule.gamma ?? 0.1);
    }
  }
}

/**
 * A training batch: features of `indices` with one view per sample drawn at random (the
 * reference's random horizontal flip), or view 0 of every sample (`views` 'first', no draw), and
 * their incremental labels.
 */
export function makeBatch(split: FeaturesSplit, labels: Int32Array, indices: Int32Array, rng: Rng, viewChoice: 'random' | 'first' = 'random'): Batch {
  const views = new Int32Array(indices.length);
  if (split.views > 1 && viewChoice === 'random') for (let i = 0; i < views.length; i++) views[i] = rng.int(split.views);
  const features = gatherFeatures(split, indices, views);
  const batchLabels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) batchLabels[i] = labels[indices[i]!]!;
  return { features, labels: batchLabels, size: indices.length };
}

/** Points of a phase's loss curve: `loss[i]` is the mean loss of the iterations up to `iteration[i]` (1-based, inclusive) since the previous point. */
export interface LossCurvePoints {
  iteration: number[];
  loss: number[];
}

/** What a phase did: iterations, mean loss of the last epoch (null: nothing ran), the thinned loss curve. */
export interface PhaseResult {
  iterations: number;
  loss: number | null;
  curve: LossCurvePoints;
}

/** At most this many points per phase in results.json: a curve, not a log of every iteration. */
export const LOSS_CURVE_POINTS = 50;

/** The loss per iteration, averaged over windows of ceil(total / LOSS_CURVE_POINTS) iterations. */
export class LossCurve {
  private readonly window: number;
  private readonly out: LossCurvePoints = { iteration: [], loss: [] };
  private sum = 0;
  private count = 0;
  private seen = 0;

  constructor(private readonly total: number) {
    this.window = Math.max(1, Math.ceil(total / LOSS_CURVE_POINTS));
  }

  add(loss: number): void {
    this.sum += loss;
    this.count++;
    this.seen++;
    if (this.count === this.window || this.seen === this.total) {
      this.out.iteration.push(this.seen);
      this.out.loss.push(this.sum / this.count);
      this.sum = 0;
      this.count = 0;
    }
  }

  points(): LossCurvePoints {
    return { iteration: [...this.out.iteration], loss: [...this.out.loss] };
  }
}

/**
 * `schedule.epochs` epochs over `indices`: reshuffled every epoch, batches of `batchSize` with the
 * last partial batch kept (DataLoader's drop_last = False), lr set before every iteration over
 * S = epochs * ceil(N / B). Returns the iterations run and the mean loss of the last epoch.
 * `ctx.pause`, when given, runs after every iteration (the run loop gives the event loop a turn
 * there so that a stop signal is seen mid-task); it changes no computation.
 */
export async function trainPhase(
  method: Method,
  phase: Phase,
  indices: Int32Array,
  schedule: SgdSchedule,
  ctx: {
    split: FeaturesSplit; labels: Int32Array; batchSize: number;
    /** Batch order and views. */
    rng: Rng;
    /** The method's generator (its noise and dropout). */
    methodRng: Rng;
    progress: ProgressFactory; label: string; pause?: () => Promise<void>;
  },
): Promise<PhaseResult> {
  const n = indices.length;
  const perEpoch = Math.ceil(n / ctx.batchSize);
  const total = schedule.epochs * perEpoch;
  if (total === 0) return { iterations: 0, loss: null, curve: { iteration: [], loss: [] } };
  method.setPhase(phase);
  const bar = ctx.progress(ctx.label, total);
  const order = Int32Array.from(indices);
  let k = 0;
  let epochLoss = 0;
  const curve = new LossCurve(total);
  for (let epoch = 0; epoch < schedule.epochs; epoch++) {
    ctx.rng.shuffleInPlace(order);
    epochLoss = 0;
    for (let s = 0; s < n; s += ctx.batchSize) {
      const batch = makeBatch(ctx.split, ctx.labels, order.subarray(s, Math.min(n, s + ctx.batchSize)), ctx.rng, method.traits.views);
      const { loss } = method.trainStep(batch, { lr: scheduledLr(k, total, schedule), iteration: k, iterations: total, epoch }, ctx.methodRng);
      if (!Number.isFinite(loss)) throw new Clap4ClipError(`${method.name}: the loss became ${loss} at ${phase} iteration ${k}`);
      epochLoss += loss;
      curve.add(loss);
      k++;
      bar.tick(1, `loss ${loss.toFixed(3)}`);
      if (ctx.pause) await ctx.pause();
    }
  }
  bar.done();
  return { iterations: k, loss: epochLoss / perEpoch, curve: curve.points() };
}
