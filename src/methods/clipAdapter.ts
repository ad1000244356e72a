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
import { Rng } from '../engine/random.js';
import { noGrad, Tensor } from '../engine/tensor.js';
import { Clap4ClipError, DataError, shown } from '../util/errors.js';
import type { Batch, Method, MethodSetup, MethodState, MethodTraits, Prediction, StepAt, StepResult, TaskClasses, TaskInfo, TensorSource } from './method.js';
import { copiedTensors, loadTensorsInto } from './state.js';
import { SeenClassText } from './zeroShot.js';

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

/** Checks clip-adapter's own options: known keys, numbers >= 0. */
export function clipAdapterOptions(given: Record<string, unknown>): ClipAdapterOptions {
  const known = Object.keys(CLIP_ADAPTER_DEFAULTS);
  for (const [k, v] of Object.entries(given)) {
    if (!known.includes(k)) throw new Clap4ClipError(`clip-adapter: unknown option "${k}": must be one of [${known.join(', ')}]`);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Clap4ClipError(`clip-adapter: option "${k}" must be a number >= 0, got ${shown(v)}`);
  }
  return { ...CLIP_ADAPTER_DEFAULTS, ...(given as Partial<ClipAdapterOptions>) };
}

class Adapter {
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(dim: number, reduction: number, rng: Rng) {
    const hidden = Math.floor(dim / reduction);
    if (hidden < 1) throw new Clap4ClipError(`clip-adapter: D / reduction = ${dim} / ${reduction} leaves no hidden unit`);
    this.fc1 = new Linear(dim, hidden, rng, { bias: false });
    this.fc2 = new Linear(hidden, dim, rng, { bias: false });
  }

  /** @param f [n, D] @returns [n, D] */
  forward(f: Tensor): Tensor {
    return relu(this.fc2.forward(relu(this.fc1.forward(f))));
  }
}

export class ClipAdapterMethod implements Method {
  readonly name = 'clip-adapter';
  readonly traits: MethodTraits;
  private readonly text: SeenClassText;
  private adapter: Adapter | null = null;
  private optimizer: SGD | null = null;

  constructor(private readonly setup: Pick<MethodSetup, 'dim' | 'logitScale'>, readonly options: ClipAdapterOptions = CLIP_ADAPTER_DEFAULTS) {
    this.text = new SeenClassText(setup.dim, this.name);
    const o = options;
    this.traits = {
      sgd: { train: { epochs: o.epochs, lr: o.lr, shape: 'cosine' }, finetune: { epochs: o.finetuneEpochs, lr: o.finetuneLr, shape: 'cosine' } },
      replay: true,
    };
  }

  beginTask(task: TaskInfo, classes: TaskClasses, rng: Rng): void {
    this.text.append(task, classes);
    this.setAdapter(new Adapter(this.setup.dim, this.options.reduction, rng));
  }

  /** Plain SGD (no momentum, no weight decay), as the reference; the step sets lr per iteration. */
  private setAdapter(adapter: Adapter): void {
    this.adapter = adapter;
    this.optimizer = new SGD([adapter.fc1.weight, adapter.fc2.weight], { lr: this.options.lr });
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
    const seen = this.text.classes;
    const t = new Tensor(this.text.data.subarray(0, seen * this.setup.dim), [seen, this.setup.dim]);
    return mulScalar(matmul(mixed, t, { transB: true }), this.setup.logitScale);
  }

  trainStep(batch: Batch, at: StepAt): StepResult {
    const loss = crossEntropy(this.forward(new Tensor(batch.features, [batch.size, this.setup.dim])), batch.labels);
    const optimizer = this.optimizer!;
    optimizer.zeroGrad();
    loss.backward();
    optimizer.step(at.lr);
    const v = loss.item();
    return { loss: v, parts: { ce: v } };
  }

  predict(features: Float32Array, n: number): Prediction {
    const logits = noGrad(() => this.forward(new Tensor(features, [n, this.setup.dim]))).data;
    return { logits, samples: 1, n, classes: this.text.classes };
  }

  endTask(): void {}

  saveState(): MethodState {
    return { tensors: [['text', this.text.tensor()], ...copiedTensors(this.namedParameters())], meta: { classes: this.text.classes } };
  }

  loadState(state: { tensors: TensorSource; meta: Record<string, unknown> }, source: string): void {
    const classes = state.meta['classes'];
    if (!Number.isInteger(classes) || (classes as number) < 0) throw new DataError(source, `clip-adapter state: "classes" must be an integer >= 0, got ${shown(classes)}`);
    this.text.load(state.tensors, classes as number, source);
    const params = new Map([...state.tensors].filter(([name]) => name !== 'text'));
    // Built from a scratch generator: its draws are overwritten by the saved weights at once.
    if (classes as number > 0) this.setAdapter(new Adapter(this.setup.dim, this.options.reduction, new Rng(0)));
    loadTensorsInto(this.namedParameters(), params, source, this.name);
  }

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

export function createClipAdapter(setup: Pick<MethodSetup, 'dim' | 'logitScale'> & { methodOptions?: Record<string, unknown> }): Method {
  return new ClipAdapterMethod(setup, clipAdapterOptions(setup.methodOptions ?? {}));
}
