/**
 * Small synthetic inputs for CLAP's tests: per-template text features around random class
 * anchors, and image clusters whose centres sit away from their text anchors (so zero-shot is
 * imperfect and training has something to learn).
 */
import { Rng } from '../../engine/random.js';
import type { Batch, Method, MethodSetup, StepAt, TaskClasses, TaskInfo } from '../method.js';

function normalizeRows(x: Float32Array, dim: number): Float32Array {
  for (let r = 0; r < x.length / dim; r++) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += x[r * dim + j]! ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < dim; j++) x[r * dim + j]! *= inv;
  }
  return x;
}

export interface TinyProblem {
  setup: Pick<MethodSetup, 'dim' | 'logitScale'>;
  /** e [C, P, D] of every class (unit norm). */
  text: Float32Array;
  numTemplates: number;
  /** The method's generator (seeded with `seed`); tests may replace it. */
  rng: Rng;
  /** The text of `task`'s classes, as `beginTask` receives it. */
  classesOf(task: TaskInfo): TaskClasses;
  /** `method.beginTask(task, classesOf(task), rng)`. */
  begin(method: Method, task: TaskInfo): void;
  /** Class anchors of the text features [C, D] (unit norm). */
  anchors: Float32Array;
  /** Image cluster centres [C, D] (unit norm). */
  centres: Float32Array;
  /** `n` images (unit norm) drawn around the centres of `classes`, labels cycling through them. */
  batch(n: number, classes: readonly number[], rng?: Rng): Batch;
}

export interface TinyProblemOptions {
  seed?: number;
  classes?: number;
  templates?: number;
  dim?: number;
  logitScale?: number;
  /** Weight of the text anchor in an image centre (the rest is a random class-specific direction). */
  anchorShare?: number;
  /** Std of the isotropic image noise before normalization. */
  imageNoise?: number;
}

export function tinyProblem(opts: TinyProblemOptions = {}): TinyProblem {
  const { seed = 1, classes = 4, templates = 3, dim = 4, logitScale = 100, anchorShare = 0.5, imageNoise = 0.1 } = opts;
  const data = new Rng(seed ^ 0x5eed);
  const anchors = new Float32Array(classes * dim);
  data.fillNormal(anchors);
  normalizeRows(anchors, dim);
  const e = new Float32Array(classes * templates * dim);
  data.fillNormal(e, 0, 0.3 / Math.sqrt(dim));
  for (let c = 0; c < classes; c++) {
    for (let p = 0; p < templates; p++) for (let j = 0; j < dim; j++) e[(c * templates + p) * dim + j]! += anchors[c * dim + j]!;
  }
  normalizeRows(e, dim);
  const centres = new Float32Array(classes * dim);
  data.fillNormal(centres, 0, 1 / Math.sqrt(dim));
  normalizeRows(centres, dim);
  for (let i = 0; i < centres.length; i++) centres[i] = anchorShare * anchors[i]! + (1 - anchorShare) * centres[i]!;
  normalizeRows(centres, dim);
  const images = data.fork();
  const block = templates * dim;
  const classesOf = (task: TaskInfo): TaskClasses => ({ textPerTemplate: e.slice(task.classStart * block, task.classEnd * block), numTemplates: templates });
  const prob: TinyProblem = {
    setup: { dim, logitScale },
    text: e,
    numTemplates: templates,
    rng: new Rng(seed),
    classesOf,
    begin(method, task) {
      method.beginTask(task, classesOf(task), prob.rng);
    },
    anchors,
    centres,
    batch(n, cls, rng = images) {
      const features = new Float32Array(n * dim);
      rng.fillNormal(features, 0, imageNoise);
      const labels = new Int32Array(n);
      for (let b = 0; b < n; b++) {
        const y = cls[b % cls.length]!;
        labels[b] = y;
        for (let j = 0; j < dim; j++) features[b * dim + j]! += centres[y * dim + j]!;
      }
      normalizeRows(features, dim);
      return { features, labels, size: n };
    },
  };
  return prob;
}

/** A training step's position for a test that only sets the learning rate. */
export function stepAt(lr: number): StepAt {
  return { lr, iteration: 0, iterations: 1, epoch: 0 };
}

/** Top-1 accuracy of the mean over samples of logits [S, n, C]. */
export function accuracyOfMeanLogits(logits: Float32Array, samples: number, n: number, classes: number, labels: Int32Array): number {
  let correct = 0;
  for (let b = 0; b < n; b++) {
    let best = -Infinity, arg = -1;
    for (let c = 0; c < classes; c++) {
      let s = 0;
      for (let r = 0; r < samples; r++) s += logits[(r * n + b) * classes + c]!;
      if (s > best) { best = s; arg = c; }
    }
    if (arg === labels[b]) correct++;
  }
  return correct / n;
}
