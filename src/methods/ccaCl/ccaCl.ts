/**
 * CCA-CL without backbone finetuning (the no-FTT variant): closed-form canonical correlation
 * between random Fourier features of image features and of class text features, accumulated over
 * the tasks. Source: github.com/zhwhu/CCA-CL, `models/ccacl.py` `Learner.__init__`/`train`/
 * `build_text_prototypes`, `utils/inc_net.py` `RFF.map`, `RunningCovMI.update`/`finalize`,
 * `CCAMIOnline.fit_from_stats`/`predict_batch`, `exps/*.json`. Specification: baselines.md section 4.
 *
 *   t_c = normalize(mean_p normalize(e[c, p]))                                build_text_prototypes
 *   phi(x) = sqrt(2/D') cos(x W + b), W ~ N(0, 1/sigma^2) [D, D'], b ~ U[0, 2pi)   RFF.__init__, RFF.map
 *   per shuffled batch B of the task: z = phi(f), u = phi(t_y), centred in B:
 *   Szz += zc^T zc, Suu += uc^T uc, Szu += zc^T uc; m_z, m_u count-weighted; n += |B|   RunningCovMI.update
 *   S = scatter / (n - 1); Szz, Suu += eps I                                  RunningCovMI.finalize
 *   Wz = Szz^-1/2, Wu = Suu^-1/2 (eigenvalues >= eps); C = Wz Szu Wu;
 *   C C^T = V diag(v) V^T (descending, >= 0); r = #{k : cumsum(v)_k / (sum v + 1e-12) <= energy};
 *   rho = sqrt(v_1..r); U_r = Wu C^T V_r / max(rho, 1e-6)                     CCAMIOnline.fit_from_stats
 *   z_p = normalize(((phi(f) - m_z) Wz V_r) rho), E_c = normalize(((phi(t_c) - m_u) Wu U_r) rho)
 *   logits = z_p . E_c / tau                                                  CCAMIOnline.predict_batch
 *   The statistics grow task by task; the solve is redone after every task   Learner.train
 *   (U_r already holds one Wu and `predict_batch` applies another, so the text side is
 *   (phi(t_c) - m_u) Suu^-3/2 Suz Wz V_r / rho rather than textbook CCA's Suu^-1: kept as written.)
 *
 * | constant | value | from |
 * | --- | --- | --- |
 * | D' (`rffDim`) | 6144 | `exps/{cifar_0_10,imagenetr_0_20,cub_0_20}.json` "rff_d" |
 * | sigma | 1 | `models/ccacl.py` `Learner.__init__`: `RFF(d=512, D_out, sigma=1)` |
 * | batch (`batchSize`) | 64, shuffled | the three json "cca_batch_size"; `Learner.incremental_train` DataLoader shuffle=True |
 * | forgetting lam | 1 (none) | `Learner.__init__`: `RunningCovMI(..., lam=1)` |
 * | eps (`ridge`) | 1e-4 jitter and 1e-4 eigenvalue floor | `Learner.train` `finalize(eps=1e-4)`; `fit_from_stats(eps=1e-4)` default |
 * | energy | 0.999 | `Learner.__init__`: `CCAMIOnline(..., tau=0.07, energy=0.999)` |
 * | tau | 0.07 | same line |
 * | rho floor, energy denominator | 1e-6, 1e-12 | `fit_from_stats` |
 * | FTT epochs | 0 here (6 in the json) | "tuned_epoch"; `incremental_train` runs FTT only when > 0 |
 * The three datasets share every CCA setting (they differ in FTT batch and seed only), so the
 * defaults hold for CIFAR-100, ImageNet-R and CUB-200 alike.
 *
 * Where this project differs, and why:
 * | reference | here | why |
 * | --- | --- | --- |
 * | FTT: CLIP finetuned on task 0 | no FTT (`tuned_epoch` 0) | FTT needs raw images; the cache has features |
 * | local open_clip ViT-B-16 of unknown weights | the features dataset's encoder (OpenAI B/16 cache) | weights cannot be identified |
 * | Szz, Suu, Szu, each D' x D' (453 MB f32 at 6144) | Szz, Myz [C, D'], Myy [C, C], class counts (151 MB) | the same information (statistics.ts); Suu, Szu are built from them |
 * | three D' x D' eigendecompositions (~6e12 flops at 6144) | one Cholesky of Szz and C x C eigenproblems (`solver` "low-rank"); "eigh" runs the reference's three | equal in exact arithmetic (solve.ts); one float64 eigendecomposition takes 0.9 CPU s at 512, so ~25 CPU min at 6144 (n^3), three per task, against ~4 s for the whole low-rank solve |
 * | energy over D' eigenvalues, D' - C of them float noise | over the C that are not zero by construction | noise moves r; exact zeros add nothing |
 * | r can be 0 | r := max(r, 1) | otherwise NaN (spec 6) |
 * | float32 solve on a GPU | statistics float32 (as the reference), solve float64 | exactness |
 * | RFF from torch's generator seeded 0; DataLoader shuffle | the method's generator (RFF when the first task begins, a permutation per task) | torch streams cannot be matched |
 * | m_u: running mean of batch means of phi(t_y) | Phi^T counts / n | equal in exact arithmetic |
 * | `predict_batch` normalizes raw `encode_image` output | normalizes the cache's unit-norm features again | the cache has no raw norms |
 * | accuracy weighted by samples | the project's task mean | the protocol (CLAP spec 7) |
 * | templates by name: ImageNet-R 7 of the 80 (`CCA_CL_IMAGENET_R_TEMPLATES`), CUB 2 bird templates | all the dataset's templates unless `templates` lists indices | a method sees template features, not strings; the cache's CUB templates are not the reference's two |
 * Memory: none. The reference is exemplar-free, and a replay memory is not offered: the statistics
 * already hold every past sample once, so replayed exemplars would be counted twice.
 */
import type { Rng } from '../../engine/random.js';
import { Tensor } from '../../engine/tensor.js';
import { gatherFeatures } from '../../data/gatherFeatures.js';
import { Clap4ClipError, DataError } from '../../util/errors.js';
import type { Method, MethodSetup, MethodState, MethodTraits, Prediction, StepResult, TaskClasses, TaskData, TaskInfo, TensorSource } from '../method.js';
import { savedTensor } from '../state.js';
import { SeenClassText } from '../zeroShot.js';
import { CCA_CL_DEFAULTS, ccaClOptions, type CcaClOptions } from './options.js';
import { drawRandomFeatures, mapRandomFeatures, type RandomFeatures } from './rff.js';
import { normalizeRows, projectionLogits, solveEigh, solveLowRank, type CcaProjection } from './solve.js';
import { CcaStatistics } from './statistics.js';

/** Rows of phi computed at once while accumulating (whole batches): bounds memory at large D'. */
const CHUNK_ROWS = 2048;

export class CcaClMethod implements Method {
  readonly name = 'cca-cl';
  readonly traits: MethodTraits = { sgd: { train: null, finetune: null }, replay: false };
  private readonly text: SeenClassText;
  private rff: RandomFeatures | null = null;
  private stats: CcaStatistics;
  private projection: CcaProjection | null = null;

  constructor(private readonly setup: Pick<MethodSetup, 'dim'>, readonly options: CcaClOptions = CCA_CL_DEFAULTS) {
    this.text = new SeenClassText(setup.dim, this.name);
    this.stats = new CcaStatistics(options.rffDim);
  }

  beginTask(task: TaskInfo, classes: TaskClasses, rng: Rng): void {
    this.text.append(task, this.chosenTemplates(task, classes));
    this.rff ??= drawRandomFeatures(this.setup.dim, this.options.rffDim, this.options.sigma, rng);
    this.stats.growClasses(task.classEnd);
  }

  /** The task's text restricted to the `templates` option (e[c, p] for the chosen p, in that order). */
  private chosenTemplates(task: TaskInfo, classes: TaskClasses): TaskClasses {
    const chosen = this.options.templates;
    if (chosen === null) return classes;
    const P = classes.numTemplates, D = this.setup.dim, n = task.classEnd - task.classStart;
    const bad = chosen.find((p) => p >= P);
    if (bad !== undefined) throw new Clap4ClipError(`cca-cl: option "templates" names template ${bad}, but the text has ${P} templates (0..${P - 1})`);
    const out = new Float32Array(n * chosen.length * D);
    for (let c = 0; c < n; c++) chosen.forEach((p, k) => out.set(classes.textPerTemplate.subarray((c * P + p) * D, (c * P + p + 1) * D), (c * chosen.length + k) * D));
    return { textPerTemplate: out, numTemplates: chosen.length };
  }

  /** Accumulates the task's rows in shuffled batches, then solves the CCA again. */
  fit(data: TaskData, rng: Rng): void {
    const rff = this.rff;
    if (rff === null) throw new Clap4ClipError('cca-cl: fit before the first task began');
    const rows = data.indices;
    if (rows.length === 0) throw new Clap4ClipError('cca-cl: a task with no training rows has nothing to fit');
    const order = rng.permutation(rows.length);
    const B = this.options.batchSize;
    const chunk = Math.max(1, Math.floor(CHUNK_ROWS / B)) * B;
    for (let s = 0; s < rows.length; s += chunk) {
      const idx = Array.from(order.subarray(s, Math.min(s + chunk, rows.length)), (i) => rows[i]!);
      const f = normalizeRows(gatherFeatures(data.split, idx), idx.length, this.setup.dim);
      const z = mapRandomFeatures(rff, f, idx.length);
      this.stats.addBatches(z, idx.map((i) => data.labels[i]!), idx.length, B);
    }
    this.solve();
  }

  private solve(): void {
    const C = this.text.classes;
    const phiText = mapRandomFeatures(this.rff!, this.text.data, C);
    const o = { ridge: this.options.ridge, energy: this.options.energy };
    this.projection = this.options.solver === 'eigh' ? solveEigh(this.stats, phiText, o) : solveLowRank(this.stats, phiText, o);
  }

  setPhase(): void {}

  trainStep(): StepResult {
    throw new Clap4ClipError('cca-cl trains nothing by SGD (it fits closed-form statistics)');
  }

  predict(features: Float32Array, n: number): Prediction {
    const D = this.setup.dim;
    if (features.length !== n * D) throw new Clap4ClipError(`cca-cl.predict: ${features.length} values for n x D = ${n} x ${D}`);
    const p = this.projection;
    if (p === null || p.classes !== this.text.classes) throw new Clap4ClipError(`cca-cl.predict: the ${this.text.classes} classes seen are not fitted yet (fit runs after each task begins)`);
    const logits = projectionLogits(p, mapRandomFeatures(this.rff!, normalizeRows(features, n, D), n), n, this.options.rffDim, this.options.tau);
    return { logits, samples: 1, n, classes: p.classes };
  }

  endTask(): void {}

  saveState(): MethodState {
    const s = this.stats, d = this.options.rffDim, C = s.classes;
    const t = (data: Float32Array, shape: number[]) => new Tensor(data.slice(), shape);
    const tensors: [string, Tensor][] = [['text', this.text.tensor()]];
    if (this.rff) tensors.push(['rff.w', t(this.rff.w, [this.setup.dim, d])], ['rff.b', t(this.rff.b, [d])]);
    tensors.push(['stats.szz', t(s.szz, [d, d])], ['stats.myz', t(s.myz, [C, d])], ['stats.myy', t(s.myy, [C, C])], ['stats.counts', t(s.counts, [C])], ['stats.mz', t(s.mz, [d])]);
    const p = this.projection;
    if (p) tensors.push(['cca.z', t(p.z, [d, p.rank])], ['cca.zOffset', t(p.zOffset, [p.rank])], ['cca.text', t(p.text, [p.classes, p.rank])], ['cca.rho', t(p.rho, [p.rank])]);
    return { tensors, meta: { classes: this.text.classes, n: s.n, statsClasses: C, rank: p?.rank ?? null, fittedClasses: p?.classes ?? null } };
  }

  loadState(state: { tensors: TensorSource; meta: Record<string, unknown> }, source: string): void {
    const m = state.meta, saved = state.tensors, d = this.options.rffDim, D = this.setup.dim;
    const count = (key: string, min: number, nullable = false): number | null => {
      const v = m[key];
      if (nullable && v === null) return null;
      if (!Number.isInteger(v) || (v as number) < min) throw new DataError(source, `cca-cl state: "${key}" must be an integer >= ${min}${nullable ? ' or null' : ''}, got ${JSON.stringify(v)}`);
      return v as number;
    };
    const classes = count('classes', 0)!, n = count('n', 0)!, statsClasses = count('statsClasses', 0)!;
    const rank = count('rank', 1, true), fitted = count('fittedClasses', 1, true);
    if ((rank === null) !== (fitted === null)) throw new DataError(source, 'cca-cl state: "rank" and "fittedClasses" must both be set or both null');
    const get = (name: string, shape: number[]) => savedTensor(saved, name, shape, source, this.name).slice();
    this.text.load(saved, classes, source);
    this.rff = saved.has('rff.w') ? { w: get('rff.w', [D, d]), b: get('rff.b', [d]), dim: D, rffDim: d } : null;
    const s = new CcaStatistics(d);
    s.growClasses(statsClasses);
    s.n = n;
    s.szz = get('stats.szz', [d, d]);
    s.myz = get('stats.myz', [statsClasses, d]);
    s.myy = get('stats.myy', [statsClasses, statsClasses]);
    s.counts = get('stats.counts', [statsClasses]);
    s.mz = get('stats.mz', [d]);
    this.stats = s;
    this.projection = rank === null ? null : {
      z: get('cca.z', [d, rank]), zOffset: get('cca.zOffset', [rank]), text: get('cca.text', [fitted!, rank]), rho: get('cca.rho', [rank]), rank, classes: fitted!,
    };
  }

  namedParameters(): [string, Tensor][] {
    return [];
  }
}

export function createCcaCl(setup: Pick<MethodSetup, 'dim'> & { methodOptions?: Record<string, unknown> }): Method {
  return new CcaClMethod(setup, ccaClOptions(setup.methodOptions ?? {}));
}
