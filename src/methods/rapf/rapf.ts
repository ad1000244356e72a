/**
 * RAPF (Huang et al., ECCV 2024, "Class-Incremental Learning with CLIP: Adaptive Representation
 * Adjustment and Parameter Fusion"), from the authors' code github.com/linlany/RAPF (`main.py`
 * `run_class_incremental`; `continual_clip/models.py` `ClassIncrementalCLIP.forward`, `adaptation`,
 * `analyze_mean_cov`, `mix_matrix`, `sample`, `shrink_cov`; `configs/class/*.yaml`), as restated in
 * the project's baselines spec section 3. Exemplar-free: the protocol's memory is not used.
 *
 * One adapter A [D, D] for the whole run (nn.Linear(512, 512, bias=False), torch's default init
 * U(+-1/sqrt D); `ClassIncrementalCLIP.__init__`), on the frozen, detached image feature f:
 *
 *   g(f) = normalize(A f),   logits = 100 g(f) . tt_c over the seen classes         (`forward`)
 *   tt_c = the unit text embedding of "a good photo of a {}." (yaml `prompt_template`)
 *   task 0:  L = CE(batch)
 *   task t:  each epoch pi = a shuffle of the n_o old classes; batch b adds 10 beta pseudo-features
 *            x ~ N(mu_o, S_o) of each o = pi[(b k + j) mod n_o], j < k, to the CE with label o;
 *            each hard pair (o, n) in P = {|tt_o - tt_n| < theta} adds 20 beta samples s ~ N(mu_o, S_o)
 *            to L_h = mean relu(g(s).tt_n - g(s).tt_o + 0.1);  L = CE + L_h     (`run_class_incremental`)
 *   optimizer: a fresh Adam per task (`torch.optim.Adam(model.adapter.parameters(), lr=cfg.lr,
 *            weight_decay=0)`: torch's betas 0.9, 0.999 and eps 1e-8), lr 1e-3, x0.1 at epochs 4 and
 *            10, 15 epochs (yaml `lr`, `milestones`, `epochs`; `MultiStepLR(gamma=0.1)` stepped per epoch)
 *   after training task t: mu_c, S_c of its classes on pre-adapter features (statistics.ts), then
 *            for t >= 1 the fusion of A_o (at task start) and A_n (fusion.ts)         (`mix_matrix`)
 *   inference: argmax of the logits; p = softmax(logits) for ECE and novelty (spec "Scores")
 *
 * Constants per dataset: options.ts. Equations of each part: losses.ts, statistics.ts, fusion.ts.
 *
 * Where this project differs, and why:
 *
 * | authors | here | why |
 * | --- | --- | --- |
 * | images through CLIP ViT-B/16 each step, no augmentation | cached view 0 (trait `views: 'first'`) | the cache; A is linear without bias and g normalizes, so g(raw f) = g(unit f) |
 * | statistics on raw features (norm about 10), jitter 1e-4 | on unit f, jitter 1e-6 (option `jitter`) | the cache has no raw norms; 1e-4 on unit features would swamp S |
 * | fp16 CLIP, adapter in float32 | float32 throughout, statistics and fusion in float64 | exactness |
 * | Cholesky at every draw | cached per class (of S, or of shrink(S)) | same values, less work |
 * | `shrink_cov` 0/0 = NaN for a diagonal S | o := 0 | defect |
 * | `mix_matrix` 0/0 when A_n = A_o | A stays A_o | defect |
 * | torch.randn / Python `random.shuffle` | the method generator passed to each call | streams cannot be matched |
 * | single template "a good photo of a {}." | option `templateIndex` (cache template p), default the mean over the cache's templates | the method contract carries e[c, p], not template strings |
 * | batch size per dataset (100 / 64 / 32) | the run's `--batch-size` (default 32) | one batch size per run; pass it for parity |
 * | accuracy sample-weighted over the seen test set | the project's metrics | one protocol for every method |
 * | fixed Continual-CLIP class order, yaml `seed: 2` | the project's class order and `--seed` | one protocol for every method |
 *
 * Checkpoint state: tt [C, D], A [D, D], mu [C, D], S [C, D, D]. The Cholesky factors are derived
 * from S on first use; hard pairs, A_o and Adam's moments live within a task and are rebuilt by
 * `beginTask` (checkpoints are taken between tasks), and every draw comes from the passed generator.
 */
import { Linear } from '../../engine/nn/linear.js';
import { Adam } from '../../engine/optim.js';
import type { Rng } from '../../engine/random.js';
import { noGrad, Tensor } from '../../engine/tensor.js';
import { cholesky } from '../../linalg/cholesky.js';
import { leftSingularVectors } from '../../linalg/leftSingular.js';
import { Clap4ClipError, DataError } from '../../util/errors.js';
import type { Batch, Method, MethodSetup, MethodState, MethodTraits, Prediction, StepAt, StepResult, TaskClasses, TaskData, TaskInfo, TensorSource } from '../method.js';
import { savedTensor } from '../state.js';
import { classTextFeatures } from '../zeroShot.js';
import { fuseAdapters } from './fusion.js';
import { adapted, hardPairs, rapfLogits, rapfLoss } from './losses.js';
import { rapfOptions, type RapfOptions } from './options.js';
import { classStatistics, sampleGaussian, shrinkCov } from './statistics.js';

/** tt [n, D] of a task's new classes: template `p` alone, or the mean over templates (normalized). */
export function taskText(classes: TaskClasses, n: number, dim: number, templateIndex: number | null): Float32Array {
  const P = classes.numTemplates;
  if (templateIndex === null) return classTextFeatures(classes.textPerTemplate, n, P, dim);
  if (templateIndex >= P) throw new Clap4ClipError(`rapf: option "templateIndex" is ${templateIndex}, but the text features have ${P} templates`);
  const one = new Float32Array(n * dim);
  for (let c = 0; c < n; c++) one.set(classes.textPerTemplate.subarray((c * P + templateIndex) * dim, (c * P + templateIndex + 1) * dim), c * dim);
  return classTextFeatures(one, n, 1, dim);
}

/**
 * The old classes whose pseudo-features join batch b of an epoch: order[(b k + j) mod n_o], j < k
 * (`main.py` `list_for_one_batch`), so an epoch of at least n_o / k batches visits every old class.
 */
export function pseudoClassesOfBatch(order: Int32Array, batch: number, k: number): number[] {
  return Array.from({ length: k }, (_, j) => order[(batch * k + j) % order.length]!);
}

/** The arrays one after another, in one allocation. */
function concatAll(xs: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(xs.reduce((n, x) => n + x.length, 0));
  let o = 0;
  for (const x of xs) { out.set(x, o); o += x.length; }
  return out;
}

export class RapfMethod implements Method {
  readonly name = 'rapf';
  readonly traits: MethodTraits;
  private readonly dim: number;
  /** tt [classes, D] */
  private text: Float32Array = new Float32Array(0);
  private classes = 0;
  /** A [D, D], created at the first task. */
  private adapter: Tensor | null = null;
  private means: Float32Array[] = [];
  private covs: Float32Array[] = [];
  /** L of each class's S (or shrink(S)), float32 [D, D], computed on first use. */
  private readonly factors = new Map<number, Float32Array>();
  // Within a task (rebuilt by beginTask):
  private task: TaskInfo | null = null;
  private oldAdapter: Float32Array | null = null;
  private pairs: [number, number][] = [];
  private optimizer: Adam | null = null;
  private epoch = -1;
  private batchInEpoch = 0;
  private classOrder = new Int32Array(0);

  constructor(private readonly setup: Pick<MethodSetup, 'dim' | 'logitScale'>, readonly options: RapfOptions) {
    this.dim = setup.dim;
    const o = options;
    this.traits = {
      sgd: { train: { epochs: o.epochs, lr: o.lr, shape: 'multistep', milestones: o.milestones, gamma: o.gamma }, finetune: null },
      replay: false,
      views: 'first',
    };
  }

  beginTask(task: TaskInfo, classes: TaskClasses, rng: Rng): void {
    const n = task.classEnd - task.classStart;
    if (task.classStart !== this.classes || n < 1) throw new Clap4ClipError(`rapf: task ${task.index} [${task.classStart}, ${task.classEnd}) does not follow the ${this.classes} classes seen`);
    if (this.adapter === null) this.adapter = new Linear(this.dim, this.dim, rng, { bias: false }).weight;
    this.text = concatAll([this.text, taskText(classes, n, this.dim, this.options.templateIndex)]);
    this.classes = task.classEnd;
    this.task = task;
    this.oldAdapter = task.classStart > 0 ? this.adapter.data.slice() : null;
    this.pairs = hardPairs(this.text, task.classStart, task.classEnd, this.dim, this.options.threshold);
    this.optimizer = new Adam([this.adapter], { lr: this.options.lr });
    this.epoch = -1;
  }

  setPhase(): void {}

  /** L of class c's S (or shrink(S)), cached. */
  private factor(c: number): Float32Array {
    let L = this.factors.get(c);
    if (L === undefined) {
      const S = this.options.shrinkage ? shrinkCov(this.covs[c]!, this.dim) : this.covs[c]!;
      L = Float32Array.from(cholesky(S, this.dim));
      this.factors.set(c, L);
    }
    return L;
  }

  /**
   * The step's pseudo-features and hard samples, drawn in the authors' order: the epoch's class
   * shuffle (at its first batch), k classes' pseudo-features, then each hard pair's samples.
   */
  private draws(at: StepAt, rng: Rng): { pseudo: Float32Array; pseudoLabels: number[]; hard: Float32Array; hardPairsOfRows: [number, number][] } {
    const o = this.options, old = this.task!.classStart;
    if (this.means.length < old) throw new Clap4ClipError(`rapf: statistics of ${this.means.length} of the ${old} old classes (fit was not called after a task)`);
    if (at.epoch !== this.epoch) {
      this.epoch = at.epoch;
      this.batchInEpoch = 0;
      if (old > 0) {
        this.classOrder = Int32Array.from({ length: old }, (_, i) => i);
        rng.shuffleInPlace(this.classOrder);
      }
    }
    const b = this.batchInEpoch++;
    const parts: Float32Array[] = [], pseudoLabels: number[] = [];
    if (old > 0) {
      const per = Math.floor(o.pseudoPerClass * o.beta);
      for (const c of pseudoClassesOfBatch(this.classOrder, b, o.classesPerBatch)) {
        parts.push(sampleGaussian(this.means[c]!, this.factor(c), per, rng));
        for (let i = 0; i < per; i++) pseudoLabels.push(c);
      }
    }
    const hardParts: Float32Array[] = [], hardPairsOfRows: [number, number][] = [];
    const perPair = Math.floor(o.hardPerPair * o.beta);
    for (const [po, pn] of this.pairs) {
      hardParts.push(sampleGaussian(this.means[po]!, this.factor(po), perPair, rng));
      for (let i = 0; i < perPair; i++) hardPairsOfRows.push([po, pn]);
    }
    return { pseudo: concatAll(parts), pseudoLabels, hard: concatAll(hardParts), hardPairsOfRows };
  }

  trainStep(batch: Batch, at: StepAt, rng: Rng): StepResult {
    const adapter = this.requireAdapter(), D = this.dim;
    const d = this.draws(at, rng);
    const ceLabels = Int32Array.from([...batch.labels, ...d.pseudoLabels]);
    const rows = (pick: (r: number) => number): Tensor => {
      const out = new Float32Array(d.hardPairsOfRows.length * D);
      for (let r = 0; r < d.hardPairsOfRows.length; r++) out.set(this.text.subarray(pick(r) * D, (pick(r) + 1) * D), r * D);
      return new Tensor(out, [d.hardPairsOfRows.length, D]);
    };
    const m = d.hardPairsOfRows.length;
    const { loss, ce, hinge } = rapfLoss(adapter, {
      ceInputs: new Tensor(concatAll([batch.features.subarray(0, batch.size * D), d.pseudo]), [ceLabels.length, D]),
      ceLabels,
      hard: m === 0 ? null : { samples: new Tensor(d.hard, [m, D]), own: rows((r) => d.hardPairsOfRows[r]![0]), nearest: rows((r) => d.hardPairsOfRows[r]![1]) },
      text: new Tensor(this.text, [this.classes, D]),
      logitScale: this.setup.logitScale,
      margin: this.options.margin,
    });
    const optimizer = this.optimizer!;
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step(at.lr);
    const v = loss.item();
    return { loss: v, parts: hinge === null ? { ce: ce.item() } : { ce: ce.item(), hinge: hinge.item() } };
  }

  /** mu and S of the task's classes (view 0, pre-adapter), then the fusion (tasks after the first). */
  fit(data: TaskData, _rng: Rng): void {
    const task = this.task;
    if (task === null) throw new Clap4ClipError('rapf: fit before beginTask');
    const { split } = data;
    const byClass: number[][] = Array.from({ length: task.classEnd - task.classStart }, () => []);
    for (const r of data.indices) {
      const c = data.labels[r]!;
      if (c >= task.classStart && c < task.classEnd) byClass[c - task.classStart]!.push(r);
    }
    byClass.forEach((rows, j) => {
      const s = classStatistics(split.features, rows, split.views * this.dim, 0, this.dim, this.options.jitter, `rapf: class ${task.classStart + j} of task ${task.index}`);
      this.means.push(s.mean);
      this.covs.push(s.cov);
    });
    if (this.oldAdapter !== null) {
      const adapter = this.requireAdapter();
      const { u } = leftSingularVectors(this.oldAdapter, this.dim, this.dim);
      adapter.data.set(fuseAdapters(this.oldAdapter, adapter.data, u, this.dim, this.options.mixBias));
    }
  }

  predict(features: Float32Array, n: number): Prediction {
    const adapter = this.requireAdapter();
    const text = new Tensor(this.text, [this.classes, this.dim]);
    const logits = noGrad(() => rapfLogits(adapted(new Tensor(features, [n, this.dim]), adapter), text, this.setup.logitScale)).data;
    return { logits, samples: 1, n, classes: this.classes };
  }

  endTask(): void {
    this.optimizer = null;
    this.oldAdapter = null;
    this.pairs = [];
  }

  saveState(): MethodState {
    const C = this.classes, D = this.dim;
    const covs = new Float32Array(C * D * D);
    this.covs.forEach((s, c) => covs.set(s, c * D * D));
    const means = new Float32Array(C * D);
    this.means.forEach((m, c) => means.set(m, c * D));
    const tensors: [string, Tensor][] = C === 0 ? [] : [
      ['text', new Tensor(this.text.slice(), [C, D])],
      ['adapter', new Tensor(this.requireAdapter().data.slice(), [D, D])],
      ['means', new Tensor(means, [C, D])],
      ['covariances', new Tensor(covs, [C, D, D])],
    ];
    return { tensors, meta: { classes: C } };
  }

  loadState(state: { tensors: TensorSource; meta: Record<string, unknown> }, source: string): void {
    const C = state.meta['classes'];
    if (!Number.isInteger(C) || (C as number) < 0) throw new DataError(source, `rapf state: "classes" must be an integer >= 0, got ${JSON.stringify(C)}`);
    const D = this.dim, n = C as number;
    const names = n === 0 ? [] : ['text', 'adapter', 'means', 'covariances'];
    for (const name of state.tensors.keys()) if (!names.includes(name)) throw new DataError(source, `holds tensor "${name}" that rapf does not have`);
    this.factors.clear();
    this.classes = n;
    if (n === 0) {
      this.text = new Float32Array(0);
      this.adapter = null;
      this.means = [];
      this.covs = [];
      return;
    }
    this.text = savedTensor(state.tensors, 'text', [n, D], source, this.name).slice();
    const a = savedTensor(state.tensors, 'adapter', [D, D], source, this.name);
    this.adapter = new Tensor(a.slice(), [D, D], true);
    const means = savedTensor(state.tensors, 'means', [n, D], source, this.name);
    const covs = savedTensor(state.tensors, 'covariances', [n, D, D], source, this.name);
    this.means = Array.from({ length: n }, (_, c) => means.slice(c * D, (c + 1) * D));
    this.covs = Array.from({ length: n }, (_, c) => covs.slice(c * D * D, (c + 1) * D * D));
  }

  namedParameters(): [string, Tensor][] {
    return this.adapter === null ? [] : [['adapter', this.adapter]];
  }

  private requireAdapter(): Tensor {
    if (this.adapter === null) throw new Clap4ClipError('rapf: beginTask was not called');
    return this.adapter;
  }
}

export function createRapf(setup: Pick<MethodSetup, 'dim' | 'logitScale'> & { methodOptions?: Record<string, unknown> }): Method {
  return new RapfMethod(setup, rapfOptions(setup.methodOptions ?? {}));
}
