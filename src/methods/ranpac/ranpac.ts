/**
 * RanPAC without Phase 1: a frozen random projection with ReLU, then a ridge-regression readout
 * on second-order statistics accumulated over every task. Nothing is trained by SGD
 * (traits.sgd null); no exemplar is kept.
 *
 *   task 0:    W in R^{D x M}, W_ij ~ N(0, 1) (M = 0: no projection, h = f); G = 0, Q = 0
 *   h = ReLU(f W)                                      (no bias, no normalization)
 *   each task, H, Y = the task's features and one-hot labels in a shuffled order:
 *     G += H^T H,  Q += H^T Y
 *     lambda: for l in 10^-8..10^8, fit on the first n_v = floor(0.8 N_t) rows only,
 *       W(l) = ((H_v^T H_v + l I)^-1 H_v^T Y_v)^T, loss(l) = mean (H_r W(l)^T - Y_r)^2 over the
 *       remaining rows; lambda* = the first argmin
 *     Wo = ((G + lambda* I)^-1 Q)^T, rows of the seen classes
 *   logits = s * h Wo^T
 *
 * Source: RanPAC/RanPAC @ 012927f.
 * - `RanPAC.py` `Learner.setup_RP`: W = `torch.randn(in_features, M)`, Q = zeros(M, total
 *   classes), G = zeros(M, M) (called once, at task 0, `use_RP` True).
 * - `RanPAC.py` `Learner.replace_fc`: `Features_h = relu(Features_f @ W_rand)` (M > 0, else
 *   `Features_f`); `Q += Features_h.T @ Y`; `G += Features_h.T @ Features_h`;
 *   `Wo = linalg.solve(G + ridge * eye, Q).T`, `fc.weight = Wo[0:seen classes]`. The rows come from
 *   `train_loader_for_CPs` (`mode="test"`: no augmentation; `shuffle=True`).
 * - `RanPAC.py` `Learner.optimise_ridge_parameter`: `ridges = 10.0 ** np.arange(-8, 9)`,
 *   `num_val_samples = int(N * 0.8)`, the solve on the first rows, `F.mse_loss` on the rest,
 *   `ridges[np.argmin(losses)]`.
 * - `inc_net.py` `CosineLinear.forward` with `use_RP`: `F.linear(relu(input @ W_rand), weight)`
 *   times sigma = 1 (`reset_parameters`); no normalization, no softmax.
 * - Settings: `args/{cifar224,imagenetr,cub}_publish.csv` row 16 ("CLIP, Phase 2" of
 *   `main_tables.py`): `model_name` ncm, `tuned_epoch` 0, `use_RP` True, M 10000; row 15 is the
 *   same with M 0 ("No RPs"). The three datasets share every setting; tasks 10 + 10 (CIFAR-100)
 *   and 20 + 20 (ImageNet-R, CUB-200).
 *
 * Memory: the authors keep no exemplars, and none is offered: replaying stored rows would add them
 * to G and Q a second time, weighting old classes by how often they were replayed.
 *
 * Where this project differs, and why:
 *
 * | reference | here | why |
 * | --- | --- | --- |
 * | Phase 1 (PETL on task 0) available | only the Phase-2-only variant | Phase 1 trains inside the image encoder: it needs raw images |
 * | timm ViT-B/32 CLIP LAION-2B, 768-D, no projection | the run's features (OpenAI ViT-B/16 after the projection, 512-D unit norm; or synthetic) | the cache; numbers are not comparable |
 * | lambda search by 17 dense M x M `linalg.solve`s | the dual form H_r H_v^T (H_v H_v^T + l I)^-1 Y_v when n_v < M (the primal otherwise) | equal in exact arithmetic, (M / n_v)^3 less work |
 * | `linalg.solve` (LU) in float32 | Cholesky in float64 (blocked, products in onnxruntime); a candidate whose system is not positive definite scores Infinity | SPD systems; float32 LU at l = 1e-8 returns noise, which the reference's argmin rejects as well |
 * | the loss over all K classes of the dataset | over the task's own classes | the other columns are 0 in both Y and the prediction: the loss is scaled by a constant, the argmin is the same |
 * | Q [M, K] for all K classes from task 0 | Q grows by the task's classes | the method is not told K; columns of unseen classes are 0 |
 * | G [M, M] float32 | its packed upper triangle, float32 | G is symmetric: half the memory and checkpoint (200 MB at M = 10000) |
 * | torch RNG for W and the loader's shuffle | the run's seeded method stream | streams cannot be matched |
 * | no temperature | option `logitScale` s, default 1 | p, ECE and novelty need a softmax; s = 1 is the reference's logits |
 * | both views of the cache | view 0 only | the reference fits on test-transform features |
 */
import type { Rng } from '../../engine/random.js';
import { Tensor } from '../../engine/tensor.js';
import { Clap4ClipError, DataError } from '../../util/errors.js';
import type { Method, MethodSetup, MethodState, MethodTraits, Prediction, StepResult, TaskData, TaskInfo, TensorSource } from '../method.js';
import { checkedOptions, integerIn, logitScaleNotes, numberIn } from '../options.js';
import { fitRows } from '../simplecil.js';
import { savedTasks, savedTensor } from '../state.js';
import { gemm } from '../../engine/ops/matmul.js';
import { accumulateClassSums, accumulateGram, packedSize, randomFeatures, randomFeaturesT, ridgeCandidates, ridgeReadout, searchRidge, type RidgeSearch } from './ridge.js';

export interface RanPacOptions {
  /** Random-projection width M (0: no projection, h = f). */
  M: number;
  /** Ridge candidates 10^k for k in [ridgeMinExponent, ridgeMaxExponent]. */
  ridgeMinExponent: number;
  ridgeMaxExponent: number;
  /** Share of a task's rows the candidates are fitted on (the rest score them). */
  validationFraction: number;
  /** s, the scale of the logits (the reference's sigma = 1). */
  logitScale: number;
}

export const RANPAC_DEFAULTS: Readonly<RanPacOptions> = Object.freeze({ M: 10000, ridgeMinExponent: -8, ridgeMaxExponent: 8, validationFraction: 0.8, logitScale: 1 });

export function ranPacOptions(given: Record<string, unknown>): RanPacOptions {
  const o = checkedOptions('ranpac', given, RANPAC_DEFAULTS, {
    M: integerIn(0, 65536),
    ridgeMinExponent: integerIn(-30, 30),
    ridgeMaxExponent: integerIn(-30, 30),
    validationFraction: numberIn(0, 1, true),
    logitScale: numberIn(0, 1e4, true),
  });
  if (o.ridgeMinExponent > o.ridgeMaxExponent) throw new Clap4ClipError(`ranpac: option "ridgeMinExponent" ${o.ridgeMinExponent} is above "ridgeMaxExponent" ${o.ridgeMaxExponent}`);
  return o;
}

/** What each task's fit chose (kept in the state: the lambda per task is part of the record). */
export interface RanPacTaskFit {
  lambda: number;
  form: RidgeSearch['form'];
  /** Held-out loss per candidate; null where the candidate's system was not positive definite (JSON has no Infinity). */
  losses: (number | null)[];
}

export class RanPac implements Method {
  readonly name = 'ranpac';
  readonly traits: MethodTraits = { sgd: { train: null, finetune: null }, replay: false };
  /** M' = M, or D without a projection. */
  private readonly width: number;
  /** W [D, M], drawn at task 0 (null before, or without a projection). */
  private W: Float32Array | null = null;
  /** G, packed upper triangle of [M', M']. */
  private gram: Float32Array;
  /** Q^T [classes, M']: per class, the sum of its rows' features. */
  private classSums: Float32Array = new Float32Array(0);
  /** Wo [classes, M']. */
  private readout: Float32Array = new Float32Array(0);
  private tasks: TaskInfo[] = [];
  private fits: RanPacTaskFit[] = [];

  readonly notes: readonly string[];

  constructor(private readonly dim: number, readonly options: RanPacOptions = RANPAC_DEFAULTS) {
    this.notes = logitScaleNotes(this.name, options.logitScale);
    this.width = options.M > 0 ? options.M : dim;
    this.gram = new Float32Array(packedSize(this.width));
  }

  private get classes(): number {
    return this.tasks.at(-1)?.classEnd ?? 0;
  }

  beginTask(task: TaskInfo, _classes: unknown, rng: Rng): void {
    if (task.index !== this.tasks.length || task.classStart !== this.classes || task.classEnd <= task.classStart) {
      throw new Clap4ClipError(`ranpac: task ${task.index} [${task.classStart}, ${task.classEnd}) does not follow the ${this.tasks.length} tasks and ${this.classes} classes seen`);
    }
    if (this.fits.length !== this.tasks.length) throw new Clap4ClipError(`ranpac: task ${this.tasks.length - 1} began but was never fitted`);
    if (task.index === 0 && this.options.M > 0) {
      this.W = new Float32Array(this.dim * this.options.M);
      rng.fillNormal(this.W);
    }
    this.tasks.push({ ...task });
  }

  fit(data: TaskData, rng: Rng): void {
    const task = this.tasks.at(-1);
    if (task === undefined || this.fits.length !== this.tasks.length - 1) throw new Clap4ClipError('ranpac: fit must follow beginTask, once per task');
    const { features, labels } = fitRows(data);
    const M = this.width;
    const k = task.classEnd - task.classStart;
    const local = labels.map((c) => c - task.classStart);
    for (let i = 0; i < local.length; i++) if (!(local[i]! >= 0 && local[i]! < k)) throw new Clap4ClipError(`ranpac.fit: row ${i} has label ${labels[i]}, not one of the task's classes [${task.classStart}, ${task.classEnd})`);

    const search = this.searchLambda(features, local, k, rng);
    this.accumulate(features, local, task);
    this.readout = ridgeReadout(this.gram, this.classSums, M, task.classEnd, search.lambda);
    this.fits.push({ lambda: search.lambda, form: search.form, losses: search.losses.map((l) => (Number.isFinite(l) ? l : null)) });
  }

  /** The lambda search on the task's rows in a shuffled order (the reference's loader shuffles). */
  private searchLambda(features: Float32Array, local: Int32Array, k: number, rng: Rng): RidgeSearch {
    const D = this.dim;
    const n = local.length;
    const order = rng.permutation(n);
    const nv = Math.floor(n * this.options.validationFraction);
    const rowsOf = (from: number, to: number): { h: Float32Array; y: Float64Array } => {
      const f = new Float32Array((to - from) * D);
      const y = new Float64Array((to - from) * k);
      for (let i = from; i < to; i++) {
        f.set(features.subarray(order[i]! * D, (order[i]! + 1) * D), (i - from) * D);
        y[(i - from) * k + local[order[i]!]!] = 1;
      }
      return { h: randomFeatures(f, to - from, D, this.W, this.width), y };
    };
    const v = rowsOf(0, nv);
    const r = rowsOf(nv, n);
    return searchRidge(v.h, v.y, nv, r.h, r.y, n - nv, this.width, k, ridgeCandidates(this.options.ridgeMinExponent, this.options.ridgeMaxExponent));
  }

  /** G += H^T H and the class sums Q^T += Y^T H over every row of the task (row order changes only rounding). */
  private accumulate(features: Float32Array, local: Int32Array, task: TaskInfo): void {
    const M = this.width;
    const ht = randomFeaturesT(features, local.length, this.dim, this.W, M);
    accumulateGram(this.gram, ht, M, local.length);
    const sums = new Float32Array(task.classEnd * M);
    sums.set(this.classSums);
    accumulateClassSums(sums.subarray(task.classStart * M), ht, local, M, task.classEnd - task.classStart);
    this.classSums = sums;
  }

  setPhase(): void {}

  trainStep(): StepResult {
    throw new Clap4ClipError('ranpac trains nothing (it has no SGD phase)');
  }

  predict(features: Float32Array, n: number): Prediction {
    const D = this.dim;
    if (features.length !== n * D) throw new Clap4ClipError(`ranpac.predict: ${features.length} values for n x D = ${n} x ${D}`);
    if (this.fits.length !== this.tasks.length) throw new Clap4ClipError('ranpac.predict: the current task has no readout yet (fit was not called)');
    const C = this.classes;
    const h = randomFeatures(features, n, D, this.W, this.width);
    const logits = gemm(h, this.readout, n, this.width, C, false, true);
    const s = this.options.logitScale;
    if (s !== 1) for (let i = 0; i < logits.length; i++) logits[i]! *= s;
    return { logits, samples: 1, n, classes: C };
  }

  endTask(): void {}

  saveState(): MethodState {
    if (this.fits.length !== this.tasks.length) throw new Clap4ClipError('ranpac: cannot save a task that began but was not fitted');
    const M = this.width;
    const C = this.classes;
    const tensors: [string, Tensor][] = [
      ['gram', new Tensor(this.gram.slice(), [packedSize(M)])],
      ['classSums', new Tensor(this.classSums.slice(), [C, M])],
      ['readout', new Tensor(this.readout.slice(), [C, M])],
    ];
    if (this.W !== null) tensors.unshift(['projection', new Tensor(this.W.slice(), [this.dim, this.options.M])]);
    return { tensors, meta: { tasks: this.tasks.map((t) => ({ ...t })), fits: structuredClone(this.fits), options: { ...this.options } } };
  }

  loadState(state: { tensors: TensorSource; meta: Record<string, unknown> }, source: string): void {
    const tasks = savedTasks(state.meta, source, this.name);
    const saved = state.meta['options'];
    if (JSON.stringify(saved) !== JSON.stringify(this.options)) throw new DataError(source, `ranpac state was saved with options ${JSON.stringify(saved)}, this method has ${JSON.stringify(this.options)}`);
    const fits = state.meta['fits'];
    const fitOk = (f: unknown): boolean => f !== null && typeof f === 'object' && typeof (f as RanPacTaskFit).lambda === 'number' && (f as RanPacTaskFit).lambda > 0;
    if (!Array.isArray(fits) || fits.length !== tasks.length || !fits.every(fitOk)) throw new DataError(source, `ranpac state: "fits" must hold one {lambda > 0, ...} per task (${tasks.length})`);
    const M = this.width;
    const C = tasks.at(-1)?.classEnd ?? 0;
    const names = new Set(state.tensors.keys());
    const expected = [...(this.options.M > 0 && tasks.length > 0 ? ['projection'] : []), 'gram', 'classSums', 'readout'];
    for (const name of names) if (!expected.includes(name)) throw new DataError(source, `holds tensor "${name}" that ranpac does not have (different method options?)`);
    this.W = expected.includes('projection') ? savedTensor(state.tensors, 'projection', [this.dim, this.options.M], source, this.name).slice() : null;
    this.gram = savedTensor(state.tensors, 'gram', [packedSize(M)], source, this.name).slice();
    this.classSums = savedTensor(state.tensors, 'classSums', [C, M], source, this.name).slice();
    this.readout = savedTensor(state.tensors, 'readout', [C, M], source, this.name).slice();
    this.tasks = tasks;
    this.fits = structuredClone(fits) as RanPacTaskFit[];
  }

  namedParameters(): [string, Tensor][] {
    return [];
  }
}

export function createRanPac(setup: Pick<MethodSetup, 'dim'> & { methodOptions?: Record<string, unknown> }): Method {
  return new RanPac(setup.dim, ranPacOptions(setup.methodOptions ?? {}));
}
