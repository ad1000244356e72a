/**
 * CLIP-Adapter baseline (spec section 7):
 *
 *   g(f) = ReLU(W2 ReLU(W1 f)),  W1: Linear(D, D/4, no bias), W2: Linear(D/4, D, no bias)
 *   f'   = normalize(0.2 g(f) + 0.8 f)
 *   logits = logitScale * f' t^T over the seen classes, loss = CE
 *
 * As the reference, a fresh adapter is built at the start of every task (the old one is
 * discarded), trained with plain SGD at lr 1e-3 on a cosine schedule without warm-up, then
 * finetuned on the memory at lr / 10. The reference applies the adapter to CLIP's unnormalized
 * image feature; a features dataset stores unit-norm features, so f here has norm 1.
 */
import { Linear } from '../engine/nn/linear.js';
import { add, crossEntropy, l2Normalize, matmul, mulScalar, relu } from '../engine/ops/index.js';
import { SGD } from '../engine/optim.js';
import { noGrad, Tensor } from '../engine/tensor.js';
import { Clap4ClipError } from '../util/errors.js';
import type { Batch, Method, MethodContext, Prediction, StepResult, TaskInfo } from './method.js';
import { classTextFeatures } from './zeroShot.js';

export interface ClipAdapterOptions {
  /** Residual ratio of the adapter output (0.2 in CLIP-Adapter). */
  ratio: number;
  /** Bottleneck reduction: hidden width D / reduction (4). */
  reduction: number;
  epochs: number;
  lr: number;
  finetuneEpochs: number;
  /** Finetuning lr (reference: lr / 10). */
  finetuneLr: number;
}

export const CLIP_ADAPTER_DEFAULTS: Readonly<ClipAdapterOptions> = Object.freeze({
  ratio: 0.2,
  reduction: 4,
  epochs: 5,
  lr: 1e-3,
  finetuneEpochs: 2,
  finetuneLr: 1e-4,
});

class Adapter {
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(dim: number, reduction: number, ctx: MethodContext) {
    const hidden = Math.floor(dim / reduction);
    if (hidden < 1) throw new Clap4ClipError(`clip-adapter: D / reduction = ${dim} / ${reduction} leaves no hidden unit`);
    this.fc1 = new Linear(dim, hidden, ctx.rng, { bias: false });
    this.fc2 = new Linear(hidden, dim, ctx.rng, { bias: false });
  }

  /** @param f [n, D] @returns [n, D] */
  forward(f: Tensor): Tensor {
    return relu(this.fc2.forward(relu(this.fc1.forward(f))));
  }
}

export class ClipAdapterMethod implements Method {
  readonly name = 'clip-adapter';
  readonly trainable = true;
  readonly schedule: Method['schedule'];
  private readonly text: Float32Array;
  private adapter: Adapter | null = null;
  private optimizer: SGD | null = null;
  private seen = 0;

  constructor(private readonly ctx: MethodContext, readonly options: ClipAdapterOptions = CLIP_ADAPTER_DEFAULTS) {
    this.text = classTextFeatures(ctx.textPerTemplate, ctx.numClasses, ctx.numTemplates, ctx.dim);
    const o = options;
    this.schedule = { epochs: o.epochs, lr: o.lr, warmup: false, finetuneEpochs: o.finetuneEpochs, finetuneLr: o.finetuneLr };
  }

  beginTask(task: TaskInfo): void {
    this.seen = task.classEnd;
    this.adapter = new Adapter(this.ctx.dim, this.options.reduction, this.ctx);
    // Plain SGD (no momentum, no weight decay), as the reference; the loop sets lr per iteration.
    this.optimizer = new SGD([this.adapter.fc1.weight, this.adapter.fc2.weight], { lr: this.options.lr });
  }

  /** Nothing to switch: no dropout, and the same adapter is finetuned. */
  setPhase(): void {}

  /**
   * @param f [n, D]
   * @returns logits [n, seen]
   */
  private forward(f: Tensor): Tensor {
    const adapter = this.requireAdapter();
    const r = this.options.ratio;
    const mixed = l2Normalize(add(mulScalar(adapter.forward(f), r), mulScalar(f, 1 - r)));
    const t = new Tensor(this.text.subarray(0, this.seen * this.ctx.dim), [this.seen, this.ctx.dim]);
    return mulScalar(matmul(mixed, t, { transB: true }), this.ctx.logitScale);
  }

  trainStep(batch: Batch, lr: number): StepResult {
    const loss = crossEntropy(this.forward(new Tensor(batch.features, [batch.size, this.ctx.dim])), batch.labels);
    const optimizer = this.optimizer!;
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step(lr);
    const v = loss.item();
    return { loss: v, parts: { ce: v } };
  }

  predict(features: Float32Array, n: number): Prediction {
    const logits = noGrad(() => this.forward(new Tensor(features, [n, this.ctx.dim]))).data;
    return { logits, samples: 1, n, classes: this.seen };
  }

  endTask(): void {}

  namedParameters(): [string, Tensor][] {
    const a = this.adapter;
    if (a === null) return [];
    return [['adapter.fc1.weight', a.fc1.weight], ['adapter.fc2.weight', a.fc2.weight]];
  }

  private requireAdapter(): Adapter {
    if (this.adapter === null) throw new Clap4ClipError('clip-adapter: beginTask was not called');
    return this.adapter;
  }
}

export function createClipAdapter(ctx: MethodContext, options: Partial<ClipAdapterOptions> = {}): Method {
  return new ClipAdapterMethod(ctx, { ...CLIP_ADAPTER_DEFAULTS, ...options });
}
