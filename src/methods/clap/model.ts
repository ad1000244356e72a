/**
 * size-budget: the forward pass and every loss term of spec sections 2-4, and the evaluation constants that must draw as it does, in one place.
 * CLAP's parameters and its forward pass with losses (spec sections 2-4):
 *
 *     t = normalize(mean_p e)                     class text features of the C seen classes [C, D]
 *     h = t + VGA(t, f, task mask)                [C, D]
 *     mu_i, sigma_i = encoder_i(h_i)              per task, [n_i, D]
 *     w^(r) = h + mu + sigma * eps^(r)            eps [T, C, D] shared by the whole batch
 *     logits = logitScale * f w^T                 [T, B, C] (one fused head: no [T, C, D] tensor in JS)
 *     L = CE + sum_{i in S} KL_i + beta * sum_{i in S} LASP_i (+ optional terms)
 *
 * Optional components (config switches): task tokens in the VGA queries, a hierarchical global
 * encoder (h + z_g feeds the task encoders, T * T_g samples) with its own KL and LASP and a
 * distillation of its means, the ortho loss, and data-driven or frozen priors.
 * The deterministic ablation (no sigma, z = mu, T = 1, no KL) shares this code.
 *
 * Where the optional components differ from the reference code, on purpose:
 * - data-driven prior: one block-masked VGA pass over all tasks with the context subset as memory;
 *   block i equals the VGA of task i's queries alone (the reference's full mask on one task's
 *   queries crashes after task 1);
 * - hierarchical: a task's KL is averaged over the T_g global samples and its classes (the
 *   reference sums over classes in this mode only); the global data-driven prior encodes
 *   t + VGA_ctx(t) like the task priors (the reference feeds h, applying the VGA twice);
 * - frozen prior: detached (a fixed target; the reference lets gradients through it).
 */
import {
  add, crossEntropyFused, gatherRows, l2Normalize, matmul, mean, mul, mulScalar, permute, reshape, sampledLogits,
  sampleGaussianWeights, slice, type FrozenBlocks,
} from '../../engine/ops/index.js';
import { namedParameters } from '../../engine/nn/parameters.js';
import type { Parameter } from '../../engine/nn/parameters.js';
import type { TransformerDecoderLayer } from '../../engine/nn/transformerDecoderLayer.js';
import { Rng, type RngState } from '../../engine/random.js';
import { meanOverGroups } from '../../engine/groupMean.js';
import { drawNormalsAhead } from '../../engine/normalsAhead.js';
import { noGrad, Tensor } from '../../engine/tensor.js';
import type { MethodSetup, Phase, TaskClasses, TaskInfo } from '../method.js';
import type { ClapConfig } from './config.js';
import { DistEncoder, encodeTasks, languageAwareInitFromStats, templateStats } from './distEncoder.js';
import { distillTerm, klTerm, laspFromMeans, orthoTerm, type GaussianPrior } from './losses.js';
import { createVga, taskBlockMask, tokenRowOfClass, vgaQueries, visualGuidedFeatures, type VgaQueries, type VisualGuidedOptions } from './vga.js';

export interface ForwardOptions {
  /** 'train': losses of the newest task only; 'finetune': of all tasks. */
  phase: Phase;
  /** Dropout in the VGA (on only while learning a new task). */
  training: boolean;
  /** Incremental labels [B]; without them only the logits are computed. */
  labels?: Int32Array;
  /** The generator of every draw of this pass: dropout, eps (when not given), prior subsets. */
  rng: Rng;
  /** Fixed noise eps [T, T_g, C, D] (T_g = 1 unless hierarchical); drawn from `rng` when absent. */
  eps?: Float32Array;
  /** Fixed noise of the global encoder [T_g, C, D] (hierarchical only). */
  epsGlobal?: Float32Array;
  /** The VGA's query block, computed once for many batches with unchanged parameters (evaluation only). */
  queries?: VgaQueries;
  /** The leading task encoders (frozen ones) baked into the encoders' native graphs (`FrozenBlocks`). */
  frozenEncoders?: FrozenBlocks | null;
}

/** What every evaluation-mode forward from one generator state computes alike (`predictionConstants`). */
export interface PredictionConstants {
  queries: VgaQueries;
  eps?: Float32Array;
  epsGlobal?: Float32Array;
}

export interface ForwardResult {
  /** logits [S, B, C]; S = `samples` (T, T * T_g when hierarchical, 1 when deterministic). */
  logits: Tensor;
  samples: number;
  classes: number;
  /** Sum of `parts` (present with labels). */
  loss: Tensor | null;
  /** Weighted loss terms as they enter the loss: ce, kl, lasp, ortho, globalKl, globalLasp, distill. */
  parts: Record<string, Tensor>;
}

/** The frozen copy of the previous task's model that distillation compares against. */
interface PreviousModel {
  /** Classes seen when the copy was taken. */
  classes: number;
  vga: TransformerDecoderLayer;
  globalEncoder: DistEncoder;
  taskTokens: Parameter[];
}

function setRequiresGrad(obj: unknown, flag: boolean): void {
  for (const [, t] of namedParameters(obj, '', { includeFrozen: true })) {
    t.requiresGrad = flag;
    t.grad = null;
  }
}

/** Copies every tensor of `from` into the same-named tensor of `to` (same structure). */
function copyParameters(from: unknown, to: unknown): void {
  const dst = new Map(namedParameters(to, '', { includeFrozen: true }));
  for (const [name, t] of namedParameters(from, '', { includeFrozen: true })) dst.get(name)!.data.set(t.data);
}

/** Per-class template statistics of the seen classes, grown by one block per task. */
export interface SeenTextStats {
  /** Ebar = mean_p e, [C, D] */
  ebar: Float32Array;
  /** unbiased variance over templates, [C, D] */
  variance: Float32Array;
}

export class ClapModel {
  /** Built with the first task (its initialization is the first draw of the method's generator). */
  private shared: { vga: TransformerDecoderLayer; globalEncoder: DistEncoder | null } | null = null;
  readonly encoders: DistEncoder[] = [];
  readonly taskTokens: Parameter[] = [];
  previous: PreviousModel | null = null;
  readonly tasks: TaskInfo[] = [];
  /** Samples per forward: T * T_g (1 for the deterministic ablation). */
  readonly samples: number;
  /** Counts hand-outs of the tensors for writing and structural changes (`revision`). */
  private writes = 0;
  /** What the model keeps of the text: the template statistics of the seen classes. */
  readonly text: SeenTextStats = { ebar: new Float32Array(0), variance: new Float32Array(0) };
  /** Constants of the seen classes: t [C, D], Ebar [C, D], the VGA mask, token rows. */
  private seen: { t: Tensor; ebar: Tensor; mask: Tensor; tokenRows: Int32Array } = {
    t: Tensor.zeros([0, 0]), ebar: Tensor.zeros([0, 0]), mask: Tensor.zeros([0, 0]), tokenRows: new Int32Array(0),
  };

  constructor(readonly setup: Pick<MethodSetup, 'dim' | 'logitScale'>, readonly config: ClapConfig, readonly deterministic: boolean) {
    if (deterministic && (config.hierarchical.enabled || config.prior.kind !== 'standard')) {
      throw new Error('CLAP deterministic: the hierarchical encoder and non-standard priors need sampling; turn them off');
    }
    const g = config.hierarchical.enabled ? config.hierarchical.globalSamples : 1;
    this.samples = deterministic ? 1 : config.samples * g;
  }

  /** The visual-guided attention layer (exists from the first task on). */
  get vga(): TransformerDecoderLayer {
    if (this.shared === null) throw new Error('CLAP: the VGA is built with the first task (call beginTask)');
    return this.shared.vga;
  }

  /** The hierarchical global encoder (null when off or before the first task). */
  get globalEncoder(): DistEncoder | null {
    return this.shared?.globalEncoder ?? null;
  }

  /** Classes seen so far. */
  get classes(): number {
    return this.tasks.length === 0 ? 0 : this.tasks[this.tasks.length - 1]!.classEnd;
  }

  /**
   * A new task with the text features of its classes e [n_i, P, D]: the statistics of the new
   * classes join the seen ones; see `addTaskFromStats`.
   */
  addTask(task: TaskInfo, classes: TaskClasses, rng: Rng): void {
    const n = task.classEnd - task.classStart;
    const { dim } = this.setup;
    if (!(n > 0) || classes.textPerTemplate.length !== n * classes.numTemplates * dim) {
      throw new Error(`CLAP: task ${task.index} has ${n} classes but ${classes.textPerTemplate.length} text values (expected n ${n} x P ${classes.numTemplates} x D ${dim})`);
    }
    const { ebar, variance } = templateStats(classes.textPerTemplate, classes.numTemplates, dim, n);
    this.addTaskFromStats(task, { ebar, variance }, rng);
  }

  /**
   * A new task: the first one builds the VGA (and, hierarchical, the global encoder); then a new
   * encoder pair with language-aware init over all seen classes (and a new task token,
   * N(0, 0.02^2)). Draws, from `rng`, in this order: VGA, global encoder, the pair's default
   * init, the token.
   * @param stats template statistics of the task's new classes, [n_i, D] each
   */
  addTaskFromStats(task: TaskInfo, stats: SeenTextStats, rng: Rng): void {
    this.markWritten();
    const { dim } = this.setup;
    if (task.index !== this.tasks.length || task.classStart !== this.classes || !(task.classEnd > task.classStart)) {
      throw new Error(`CLAP: task ${task.index} [${task.classStart}, ${task.classEnd}) does not follow task ${this.tasks.length - 1} ending at ${this.classes}`);
    }
    if (this.shared === null) {
      const cfg = this.config;
      const vga = createVga(dim, cfg.vga, rng);
      const globalEncoder = cfg.hierarchical.enabled ? new DistEncoder(dim, rng, { withSigma: true, sigmaFloor: cfg.sigmaFloor }) : null;
      this.shared = { vga, globalEncoder };
    }
    this.text.ebar = appendRows(this.text.ebar, stats.ebar);
    this.text.variance = appendRows(this.text.variance, stats.variance);
    const enc = new DistEncoder(dim, rng, { withSigma: !this.deterministic, sigmaFloor: this.config.sigmaFloor });
    languageAwareInitFromStats(enc, this.text.ebar, this.text.variance, task.classEnd);
    this.encoders.push(enc);
    if (this.config.taskTokens) {
      const token = new Tensor(new Float32Array(dim), [1, dim], true);
      rng.fillNormal(token.data, 0, 0.02);
      this.taskTokens.push(token);
    }
    this.tasks.push({ ...task });
    // Constants of the seen classes: t = normalize(Ebar), Ebar itself (LASP), the VGA mask.
    const c = task.classEnd;
    const ebar = new Tensor(this.text.ebar.slice(0, c * dim), [c, dim]);
    this.seen = {
      t: l2Normalize(ebar).detach(),
      ebar,
      mask: taskBlockMask(this.tasks, { taskTokens: this.config.taskTokens }),
      tokenRows: tokenRowOfClass(this.tasks),
    };
  }

  /**
   * Trainable sets. 'train': the VGA, the newest encoder pair (and token); older pairs frozen.
   * 'finetune': every pair (and token); the VGA frozen. The global encoder always trains.
   */
  setTrainable(phase: Phase): void {
    const last = this.encoders.length - 1;
    setRequiresGrad(this.vga, phase === 'train');
    this.encoders.forEach((e, i) => setRequiresGrad(e, phase === 'finetune' || i === last));
    this.taskTokens.forEach((t, i) => setRequiresGrad(t, phase === 'finetune' || i === last));
    if (this.globalEncoder) setRequiresGrad(this.globalEncoder, true);
    if (this.previous) setRequiresGrad(this.previous, false);
  }

  /**
   * Moves with every change of the model that does not come through a train step: a new task, a
   * distillation snapshot, and every hand-out of the tensors (`namedParameters`, or a writer that
   * reaches them otherwise and calls `markWritten`). What is computed once from the parameters
   * (the method's prediction constants and packed encoders) is recomputed when it moved.
   */
  get revision(): number {
    return this.writes;
  }

  /** Tells the model that its tensors were written in place outside a train step. */
  markWritten(): void {
    this.writes++;
  }

  /** Every tensor by dotted name, frozen ones included (the checkpoint's content); none before the first task. The caller may write them. */
  namedParameters(): [string, Tensor][] {
    this.markWritten();
    if (this.shared === null) return [];
    const tree: Record<string, unknown> = { vga: this.vga, encoders: this.encoders };
    if (this.config.taskTokens) tree['taskTokens'] = this.taskTokens;
    if (this.globalEncoder) tree['globalEncoder'] = this.globalEncoder;
    if (this.previous) tree['previous'] = this.previous;
    return namedParameters(tree, '', { includeFrozen: true });
  }

  /** Freezes a copy of the VGA, global encoder and tokens for the next task's distillation. */
  snapshotForDistillation(): void {
    if (!this.globalEncoder) return;
    this.markWritten();
    const { dim } = this.setup;
    // Construction draws from a throwaway generator: the copies are overwritten right away.
    const scratch = new Rng(0);
    const prev: PreviousModel = {
      classes: this.classes,
      vga: createVga(dim, this.config.vga, scratch),
      globalEncoder: new DistEncoder(dim, scratch, { withSigma: true, sigmaFloor: this.config.sigmaFloor }),
      taskTokens: this.taskTokens.map((t) => new Tensor(t.data.slice(), t.shape, false)),
    };
    copyParameters(this.vga, prev.vga);
    copyParameters(this.globalEncoder, prev.globalEncoder);
    setRequiresGrad(prev, false);
    this.previous = prev;
  }

  private normals(n: number, rng: Rng): Float32Array {
    const eps = new Float32Array(n);
    rng.fillNormal(eps);
    return eps;
  }

  /**
   * The parts of an evaluation-mode `forward` from `Rng.fromState(noise)` that do not depend on
   * the images, while the parameters stay as they are: the noise, drawn as `forward` draws it (eps
   * from a fork of the generator, then the global encoder's), and the VGA's query block. One
   * evaluation predicts thousands of batches with the same T sampled heads (spec section 7); this
   * draws their million normals and runs the self-attention over the class queries once.
   */
  predictionConstants(noise: RngState): PredictionConstants {
    if (this.classes === 0) throw new Error('CLAP: prediction before the first task (call beginTask)');
    const { dim: d } = this.setup;
    const c = this.classes;
    const rng = Rng.fromState(noise);
    const eps = this.deterministic ? undefined : this.normals(this.samples * c * d, rng.fork());
    const epsGlobal = this.globalEncoder ? this.normals(this.config.hierarchical.globalSamples * c * d, rng) : undefined;
    return { queries: this.evaluationQueries(rng), eps, epsGlobal };
  }

  /** The VGA's query block in evaluation mode (no dropout, so `rng` is not drawn from), without a graph. */
  evaluationQueries(rng: Rng): VgaQueries {
    return noGrad(() => vgaQueries(this.vga, this.seen.t, this.vgaOptions(false, rng)));
  }

  /** Whether the current trainable set leaves the query block as it is (finetuning: the VGA is frozen; task tokens are not). */
  queryBlockFrozen(): boolean {
    const trainable = (obj: unknown) => namedParameters(obj, '', { includeFrozen: true }).some(([, p]) => p.requiresGrad);
    return !trainable(this.vga) && !(this.config.taskTokens && trainable(this.taskTokens));
  }

  private vgaOptions(training: boolean, rng: Rng): VisualGuidedOptions {
    const tokens = this.config.taskTokens ? this.taskTokens : null;
    return { mask: this.seen.mask, training, rng, tokens, tokenRows: this.seen.tokenRows };
  }

  /**
   * @param features image features [B, D] (unit norm)
   * @returns logits [S, B, C] and, with labels, the loss and its terms
   */
  forward(features: Float32Array, n: number, opts: ForwardOptions): ForwardResult {
    const { dim: d, logitScale } = this.setup;
    const rng = opts.rng;
    const cfg = this.config;
    const c = this.classes;
    if (c === 0) throw new Error('CLAP: forward before the first task (call beginTask)');
    if (features.length !== n * d) throw new Error(`CLAP: ${features.length} feature values for n = ${n}, D = ${d}`);
    const f = new Tensor(features, [n, d]);
    const { t, ebar } = this.seen;
    // eps [S, C, D] comes from a child stream, drawn by a worker thread while the VGA runs; the
    // worker also averages it over the T samples (LASP's mean offsets, when training).
    const s = this.samples;
    const mcSamples = this.deterministic ? 1 : cfg.samples; // T
    const epsAhead = this.deterministic || opts.eps ? null : drawNormalsAhead(rng.fork(), s * c * d, opts.labels ? mcSamples : 0);
    if (opts.queries && opts.training) throw new Error('CLAP: precomputed VGA queries are for evaluation only');
    const vgaOpts = this.vgaOptions(opts.training, rng);
    const { h, hGlobal } = visualGuidedFeatures(this.vga, t, f, vgaOpts, opts.queries);

    // Hierarchical: the task encoders read h + z_g, z_g ~ N(mu_g, sigma_g) from the global encoder.
    let x = h; // [C, D], or [T_g, C, D] when hierarchical
    let global: { mu: Tensor; sigma: Tensor; eps: Float32Array; samples: number } | null = null;
    if (this.globalEncoder) {
      const g = cfg.hierarchical.globalSamples;
      const { mu, sigma } = this.globalEncoder.forward(hGlobal);
      const eps = opts.epsGlobal ?? this.normals(g * c * d, rng);
      if (eps.length !== g * c * d) throw new Error(`CLAP: epsGlobal needs ${g * c * d} values`);
      global = { mu, sigma: sigma!, eps, samples: g };
      x = add(h, sampleGaussianWeights(null, mu, sigma!, eps, g));
    }

    // Task encoders on their own classes; old pairs still run (their logits are in the softmax).
    const { mu, sigma } = encodeTasks(this.encoders, x, this.tasks, opts.frozenEncoders);

    // Logits [S, B, C]. The default path is the fused CLAP head: w = h + mu + sigma * eps never
    // reaches JavaScript. Hierarchical: w [T, T_g, C, D] explicitly, then one product for all S * C rows.
    let logits: Tensor;
    let eps: Float32Array | null = null;
    if (!sigma) {
      logits = reshape(matmul(mulScalar(f, logitScale), add(x, mu), { transB: true }), [1, n, c]);
    } else {
      eps = opts.eps ?? epsAhead!.take();
      if (eps.length !== s * c * d) throw new Error(`CLAP: eps needs ${s * c * d} values`);
      if (!global) {
        logits = sampledLogits(f, add(x, mu), sigma, eps, mcSamples, logitScale);
      } else {
        const w = sampleGaussianWeights(x, mu, sigma, eps, mcSamples);
        const flat = matmul(mulScalar(f, logitScale), reshape(w, [s * c, d]), { transB: true }); // [B, S * C]
        logits = permute(reshape(flat, [n, s, c]), [1, 0, 2]);
      }
    }
    const result: ForwardResult = { logits, samples: s, classes: c, loss: null, parts: {} };
    if (!opts.labels) return result;

    const labels = opts.labels;
    const parts = result.parts;
    // CE over all S * B rows; row r * B + b belongs to image b.
    const targets = new Int32Array(s * n);
    for (let r = 0; r < s; r++) targets.set(labels, r * n);
    parts['ce'] = crossEntropyFused(reshape(logits, [s * n, c]), targets);

    const lossTasks = opts.phase === 'train' ? [this.tasks.length - 1] : this.tasks.map((_, i) => i);
    // Mean offsets zbar = mean_r z^(r) = mu + sigma * mean_r eps^(r) (averaged over z_g too): [C, D].
    const epsMean = sigma ? (opts.eps ? meanOverGroups(eps!, mcSamples) : epsAhead!.mean()) : null;
    const zbar = sigma ? meanOverLeading(add(mu, mul(sigma, new Tensor(epsMean!, sigma.shape)))) : mu;
    const priorCtx = this.dataDrivenContext(f, vgaOpts, rng);
    // A term summed over the tasks in S (the newest task in 'train', all tasks in 'finetune').
    const terms = (name: string, fn: (i: number, task: TaskInfo) => Tensor) => {
      parts[name] = lossTasks.map((i) => fn(i, this.tasks[i]!)).reduce((a, b) => add(a, b));
    };
    if (sigma) {
      terms('kl', (i, task) => {
        const rows = (v: Tensor) => slice(v, -2, task.classStart, task.classEnd);
        return klTerm(rows(mu), rows(sigma), this.taskPrior(i, task, priorCtx), cfg.klWeight);
      });
    }
    if (cfg.laspWeight > 0) {
      terms('lasp', (_i, task) => mulScalar(laspFromMeans(slice(ebar, 0, task.classStart, task.classEnd), slice(zbar, 0, task.classStart, task.classEnd)), cfg.laspWeight));
    }
    if (cfg.orthoLoss.enabled) parts['ortho'] = mulScalar(orthoTerm(zbar), cfg.orthoLoss.weight);
    if (global) this.globalTerms(global, f, opts, priorCtx, parts);
    result.loss = Object.values(parts).reduce((a, b) => add(a, b));
    return result;
  }

  /** h and hGlobal recomputed with a random contextSize share of the batch as memory (data-driven prior). */
  private dataDrivenContext(f: Tensor, vgaOpts: VisualGuidedOptions, rng: Rng): { h: Tensor; hGlobal: Tensor } | null {
    const prior = this.config.prior;
    if (prior.kind !== 'dataDriven' || this.deterministic) return null;
    const n = f.shape[0]!;
    const idx = rng.choice(n, Math.min(n, Math.ceil(prior.contextSize * n)));
    // The same block-masked VGA over all tasks: row block i equals the VGA of task i's queries
    // alone, which is the per-task prior the reference intended (its mask broke after task 1).
    return visualGuidedFeatures(this.vga, this.seen.t, gatherRows(f, idx), vgaOpts);
  }

  /** The KL prior of task i: N(0, I) (undefined), data-driven (with gradients), or frozen (detached). */
  private taskPrior(i: number, task: TaskInfo, ctx: { h: Tensor } | null): GaussianPrior | undefined {
    const enc = this.encoders[i]!;
    const kind = this.config.prior.kind;
    if (kind === 'dataDriven' && ctx) {
      const { mu, sigma } = enc.forward(slice(ctx.h, 0, task.classStart, task.classEnd));
      return { mu, sigma: sigma! };
    }
    if (kind === 'frozen') {
      return noGrad(() => {
        const { mu, sigma } = enc.forward(slice(this.seen.ebar, 0, task.classStart, task.classEnd));
        return { mu, sigma: sigma! };
      });
    }
    return undefined;
  }

  /** The global encoder's KL and LASP over all classes, and the distillation of its means. */
  private globalTerms(
    global: { mu: Tensor; sigma: Tensor; eps: Float32Array; samples: number },
    f: Tensor, opts: ForwardOptions, priorCtx: { hGlobal: Tensor } | null, parts: Record<string, Tensor>,
  ): void {
    const cfg = this.config;
    const enc = this.globalEncoder!;
    let prior: GaussianPrior | undefined;
    // Reference: the global prior is data-driven only while learning a new task.
    if (priorCtx && opts.phase === 'train') {
      const { mu, sigma } = enc.forward(priorCtx.hGlobal);
      prior = { mu, sigma: sigma! };
    }
    parts['globalKl'] = klTerm(global.mu, global.sigma, prior, cfg.klWeight);
    if (cfg.laspWeight > 0) {
      const zbar = add(global.mu, mul(global.sigma, new Tensor(meanOverGroups(global.eps, global.samples), global.mu.shape)));
      parts['globalLasp'] = mulScalar(laspFromMeans(this.seen.ebar, zbar), cfg.laspWeight);
    }
    const prev = this.previous;
    const cOld = this.tasks.length > 1 ? this.tasks[this.tasks.length - 2]!.classEnd : 0;
    if (prev && cfg.hierarchical.distillWeight > 0 && cOld > 0) {
      if (prev.classes !== cOld) throw new Error(`CLAP: the distillation copy covers ${prev.classes} classes, the old tasks ${cOld}: call endTask after every task`);
      const previousMu = noGrad(() => {
        const oldTasks = this.tasks.slice(0, -1);
        const { hGlobal } = visualGuidedFeatures(prev.vga, slice(this.seen.t, 0, 0, cOld), f, {
          mask: taskBlockMask(oldTasks, { taskTokens: cfg.taskTokens }),
          training: false,
          rng: opts.rng,
          tokens: cfg.taskTokens ? prev.taskTokens.slice(0, oldTasks.length) : null,
          tokenRows: tokenRowOfClass(oldTasks),
        });
        return prev.globalEncoder.forward(hGlobal).mu;
      });
      parts['distill'] = mulScalar(distillTerm(slice(global.mu, 0, 0, cOld), previousMu), cfg.hierarchical.distillWeight);
    }
  }
}

/** [a rows, D] followed by [b rows, D]. */
function appendRows(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** [G, C, D] -> mean over G [C, D]; [C, D] unchanged. */
function meanOverLeading(x: Tensor): Tensor {
  return x.ndim === 3 ? mean(x, [0]) : x;
}
