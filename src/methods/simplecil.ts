/**
 * SimpleCIL: a prototype (nearest-class-mean, cosine) classifier on the frozen image features.
 *
 *   after task i, for each new class c:  mu_c = mean of its training features f (view 0)
 *   logits[c] = s * (f . mu_c) / (|f| |mu_c|)   over every class seen so far
 *
 * Old prototypes are never touched; nothing is trained (traits.sgd null) and no exemplar is kept.
 *
 * Source (zhoudw-zdw/RevisitingCIL @ a2e6b71; LAMDA-CL/C3Box @ 1378ab2; RanPAC/RanPAC @ 012927f):
 * - mu_c: RevisitingCIL `models/simplecil.py` `Learner.replace_fc` (`proto = embedding.mean(0)`,
 *   written into `fc.weight[class_index]` for the task's classes only); C3Box
 *   `models/simplecil.py` `Learner.replace_fc` (the same on `convnet.encode_image`, its
 *   normalize line commented out); RanPAC `RanPAC.py` `Learner.replace_fc` (the `use_RP` False
 *   branch, "original cosine similarity approach", the row "CLIP, NCM only" = ID 14 of
 *   `args/*_publish.csv`).
 * - logits: `CosineLinear.forward` (RevisitingCIL `convs/linears.py`, C3Box `backbone/linears.py`,
 *   RanPAC `inc_net.py`): `F.linear(F.normalize(input), F.normalize(weight))`, times sigma.
 * - s = 1: `CosineLinear.reset_parameters` fills sigma with 1; `SimpleVitNet.update_fc` carries
 *   it over; SimpleCIL never trains it.
 * - The features the means are taken of come from the test transform (`train_loader_for_protonet`,
 *   `mode="test"`): no augmentation. C3Box `exps/simplecil.json`: `memory_size` 0, 10 + 10 classes.
 * - The defaults are the same for CIFAR-100, ImageNet-R and CUB-200 (no per-dataset setting).
 *
 * Memory: the authors keep no exemplars, and none is offered: a class's prototype is the mean of
 * all its training rows when it arrives, so stored exemplars could only replace it by a noisier one.
 *
 * Where this project differs, and why:
 *
 * | reference | here | why |
 * | --- | --- | --- |
 * | mean of the raw (un-normalized) encoder outputs | mean of the cached unit-norm f | the cache keeps no norms |
 * | ViT-B/16 IN-21k (RevisitingCIL), open_clip LAION-400M (C3Box), ViT-B/32 LAION-2B (RanPAC) | the run's features (OpenAI ViT-B/16, or synthetic) | the cache; numbers are not comparable |
 * | no temperature: s = 1 | option `logitScale`, default 1 | with s = 1 the softmax over cosines is nearly uniform, so ECE and MSP at s = 1 describe that, not the method's ranking; a larger s is offered for calibration studies |
 * | both views of the cache | view 0 only | the reference fits on test-transform features |
 * | accuracy sample-weighted (C3Box) | the project's task mean | one protocol for every method |
 */
import { gatherFeatures } from '../data/gatherFeatures.js';
import { l2Normalize } from '../engine/ops/index.js';
import type { Rng } from '../engine/random.js';
import { noGrad, Tensor } from '../engine/tensor.js';
import { Clap4ClipError, DataError } from '../util/errors.js';
import type { Method, MethodSetup, MethodState, MethodTraits, Prediction, StepResult, TaskData, TaskInfo, TensorSource } from './method.js';
import { checkedOptions, logitScaleNotes, numberIn } from './options.js';
import { savedTasks, savedTensor } from './state.js';
import { scaledCosineLogits } from './zeroShot.js';

export interface SimpleCilOptions {
  /** s, the scale of the cosine logits (the reference's sigma = 1). */
  logitScale: number;
}

export const SIMPLECIL_DEFAULTS: Readonly<SimpleCilOptions> = Object.freeze({ logitScale: 1 });

export function simpleCilOptions(given: Record<string, unknown>): SimpleCilOptions {
  return checkedOptions('simplecil', given, SIMPLECIL_DEFAULTS, { logitScale: numberIn(0, 1e4, true) });
}

/**
 * Class means of the rows of each class of [classStart, classEnd) (float64 accumulation).
 * @param features [n, D] @param labels [n] @returns mu [classEnd - classStart, D]
 */
export function classMeans(features: Float32Array, labels: Int32Array, dim: number, classStart: number, classEnd: number, what: string): Float32Array {
  const k = classEnd - classStart;
  const sums = new Float64Array(k * dim);
  const counts = new Float64Array(k);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i]! - classStart;
    if (c < 0 || c >= k) throw new Clap4ClipError(`${what}: row ${i} has label ${labels[i]}, not one of the task's classes [${classStart}, ${classEnd})`);
    counts[c]!++;
    for (let j = 0; j < dim; j++) sums[c * dim + j]! += features[i * dim + j]!;
  }
  const mu = new Float32Array(k * dim);
  for (let c = 0; c < k; c++) {
    if (counts[c] === 0) throw new Clap4ClipError(`${what}: class ${classStart + c} has no training sample, so it has no prototype`);
    for (let j = 0; j < dim; j++) mu[c * dim + j] = sums[c * dim + j]! / counts[c]!;
  }
  return mu;
}

/** The view-0 features [n, D] and labels of a fit's rows. */
export function fitRows(data: TaskData): { features: Float32Array; labels: Int32Array } {
  const labels = Int32Array.from(data.indices, (r) => data.labels[r]!);
  return { features: gatherFeatures(data.split, data.indices), labels };
}

export class SimpleCil implements Method {
  readonly name = 'simplecil';
  readonly traits: MethodTraits = { sgd: { train: null, finetune: null }, replay: false };
  /** mu [classes, D], one row per seen class (rows of the current task are filled by `fit`). */
  private prototypes: Float32Array = new Float32Array(0);
  private tasks: TaskInfo[] = [];
  /** Whether the current task's prototypes were fitted. */
  private fitted = true;

  readonly notes: readonly string[];

  constructor(private readonly dim: number, readonly options: SimpleCilOptions = SIMPLECIL_DEFAULTS) {
    this.notes = logitScaleNotes(this.name, options.logitScale);
  }

  private get classes(): number {
    return this.tasks.at(-1)?.classEnd ?? 0;
  }

  beginTask(task: TaskInfo): void {
    if (task.index !== this.tasks.length || task.classStart !== this.classes || task.classEnd <= task.classStart) {
      throw new Clap4ClipError(`simplecil: task ${task.index} [${task.classStart}, ${task.classEnd}) does not follow the ${this.tasks.length} tasks and ${this.classes} classes seen`);
    }
    if (!this.fitted) throw new Clap4ClipError(`simplecil: task ${this.tasks.length - 1} began but was never fitted`);
    this.tasks.push({ ...task });
    this.fitted = false;
  }

  fit(data: TaskData): void {
    const task = this.tasks.at(-1);
    if (task === undefined) throw new Clap4ClipError('simplecil: fit before beginTask');
    const { features, labels } = fitRows(data);
    const mu = classMeans(features, labels, this.dim, task.classStart, task.classEnd, 'simplecil.fit');
    const next = new Float32Array(task.classEnd * this.dim);
    next.set(this.prototypes.subarray(0, task.classStart * this.dim));
    next.set(mu, task.classStart * this.dim);
    this.prototypes = next;
    this.fitted = true;
  }

  setPhase(): void {}

  trainStep(): StepResult {
    throw new Clap4ClipError('simplecil trains nothing (it has no SGD phase)');
  }

  predict(features: Float32Array, n: number, _rng?: Rng): Prediction {
    const D = this.dim;
    if (features.length !== n * D) throw new Clap4ClipError(`simplecil.predict: ${features.length} values for n x D = ${n} x ${D}`);
    if (!this.fitted) throw new Clap4ClipError('simplecil.predict: the current task has no prototypes yet (fit was not called)');
    const C = this.classes;
    const logits = noGrad(() => {
      const f = l2Normalize(new Tensor(features, [n, D]));
      const mu = l2Normalize(new Tensor(this.prototypes.slice(0, C * D), [C, D])).data;
      return scaledCosineLogits(f, mu, C, D, this.options.logitScale);
    });
    return { logits, samples: 1, n, classes: C };
  }

  endTask(): void {}

  saveState(): MethodState {
    if (!this.fitted) throw new Clap4ClipError('simplecil: cannot save a task that began but was not fitted');
    return {
      tensors: [['prototypes', new Tensor(this.prototypes.slice(), [this.classes, this.dim])]],
      meta: { tasks: this.tasks.map((t) => ({ ...t })), options: { ...this.options } },
    };
  }

  loadState(state: { tensors: TensorSource; meta: Record<string, unknown> }, source: string): void {
    const tasks = savedTasks(state.meta, source, this.name);
    const saved = state.meta['options'] as Record<string, unknown> | undefined;
    if (saved !== undefined && JSON.stringify(saved) !== JSON.stringify(this.options)) {
      throw new DataError(source, `simplecil state was saved with options ${JSON.stringify(saved)}, this method has ${JSON.stringify(this.options)}`);
    }
    const classes = tasks.at(-1)?.classEnd ?? 0;
    this.prototypes = savedTensor(state.tensors, 'prototypes', [classes, this.dim], source, this.name).slice();
    this.tasks = tasks;
    this.fitted = true;
  }

  namedParameters(): [string, Tensor][] {
    return [];
  }
}

export function createSimpleCil(setup: Pick<MethodSetup, 'dim'> & { methodOptions?: Record<string, unknown> }): Method {
  return new SimpleCil(setup.dim, simpleCilOptions(setup.methodOptions ?? {}));
}
