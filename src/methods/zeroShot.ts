/**
 * Continual-CLIP zero-shot baseline (spec section 7): logits = logitScale * f t^T over the seen
 * classes, with t[c] = normalize(mean_p e[c, p]). Nothing is trained; memory and finetuning are
 * no-ops for it. The text of a task's classes arrives when the task begins.
 */
import { matmul } from '../engine/ops/index.js';
import { noGrad, Tensor } from '../engine/tensor.js';
import { Clap4ClipError, DataError } from '../util/errors.js';
import type { Method, MethodSetup, MethodState, MethodTraits, Prediction, StepResult, TaskClasses, TaskInfo, TensorSource } from './method.js';
import { savedTensor } from './state.js';

/**
 * Class text features t[c] = normalize(mean_p e[c, p]) (float64 accumulation).
 * @param text e, [C, P, D]
 * @returns t, [C, D]
 */
export function classTextFeatures(text: Float32Array, numClasses: number, numTemplates: number, dim: number): Float32Array {
  if (text.length !== numClasses * numTemplates * dim) {
    throw new Clap4ClipError(`text features hold ${text.length} values, expected C x P x D = ${numClasses * numTemplates * dim}`);
  }
  const t = new Float32Array(numClasses * dim);
  const acc = new Float64Array(dim);
  for (let c = 0; c < numClasses; c++) {
    acc.fill(0);
    for (let p = 0; p < numTemplates; p++) {
      const o = (c * numTemplates + p) * dim;
      for (let i = 0; i < dim; i++) acc[i]! += text[o + i]!;
    }
    let n = 0;
    for (let i = 0; i < dim; i++) n += acc[i]! * acc[i]!;
    const inv = 1 / Math.max(Math.sqrt(n), 1e-12);
    for (let i = 0; i < dim; i++) t[c * dim + i] = acc[i]! * inv;
  }
  return t;
}

/**
 * logitScale * f t[:seen]^T without a tape.
 * @param features f, [n, D]
 * @param text t, [C_total, D]; only the first `seen` rows are used
 * @returns logits, [n, seen]
 */
export function scaledCosineLogits(features: Tensor, text: Float32Array, seen: number, dim: number, logitScale: number): Float32Array {
  const t = new Tensor(text.subarray(0, seen * dim), [seen, dim]);
  const y = noGrad(() => matmul(features, t, { transB: true })).data;
  for (let i = 0; i < y.length; i++) y[i]! *= logitScale;
  return y;
}

/**
 * t [C, D] of the classes seen so far, grown by one block per task: a method's text head, as
 * zero-shot and CLIP-Adapter keep it (saved with the method's state as tensor "text").
 */
export class SeenClassText {
  /** t [classes, D] */
  data = new Float32Array(0);
  classes = 0;

  constructor(private readonly dim: number, private readonly method: string) {}

  /** Appends t of the task's new classes (its first class must be the next label). */
  append(task: TaskInfo, classes: TaskClasses): void {
    const n = task.classEnd - task.classStart;
    if (task.classStart !== this.classes || n < 1) throw new Clap4ClipError(`${this.method}: task ${task.index} [${task.classStart}, ${task.classEnd}) does not follow the ${this.classes} classes seen`);
    const t = classTextFeatures(classes.textPerTemplate, n, classes.numTemplates, this.dim);
    const next = new Float32Array(this.data.length + t.length);
    next.set(this.data);
    next.set(t, this.data.length);
    this.data = next;
    this.classes = task.classEnd;
  }

  tensor(): Tensor {
    return new Tensor(this.data.slice(), [this.classes, this.dim]);
  }

  load(saved: TensorSource, classes: number, source: string): void {
    this.data = savedTensor(saved, 'text', [classes, this.dim], source, this.method).slice();
    this.classes = classes;
  }
}

export class ZeroShotClip implements Method {
  readonly name = 'zeroshot';
  readonly traits: MethodTraits = { sgd: { train: null, finetune: null }, replay: false };
  private readonly text: SeenClassText;

  constructor(private readonly setup: Pick<MethodSetup, 'dim' | 'logitScale'>) {
    this.text = new SeenClassText(setup.dim, this.name);
  }

  beginTask(task: TaskInfo, classes: TaskClasses): void {
    this.text.append(task, classes);
  }

  setPhase(): void {}

  trainStep(): StepResult {
    throw new Clap4ClipError('zeroshot trains nothing (it has no SGD phase)');
  }

  predict(features: Float32Array, n: number): Prediction {
    const D = this.setup.dim;
    if (features.length !== n * D) throw new Clap4ClipError(`zeroshot.predict: ${features.length} values for n x D = ${n} x ${D}`);
    const seen = this.text.classes;
    const logits = scaledCosineLogits(new Tensor(features, [n, D]), this.text.data, seen, D, this.setup.logitScale);
    return { logits, samples: 1, n, classes: seen };
  }

  endTask(): void {}

  saveState(): MethodState {
    return { tensors: [['text', this.text.tensor()]], meta: { classes: this.text.classes } };
  }

  loadState(state: { tensors: TensorSource; meta: Record<string, unknown> }, source: string): void {
    const classes = state.meta['classes'];
    if (!Number.isInteger(classes) || (classes as number) < 0) throw new DataError(source, `zeroshot state: "classes" must be an integer >= 0, got ${JSON.stringify(classes)}`);
    this.text.load(state.tensors, classes as number, source);
  }

  namedParameters(): [string, Tensor][] {
    return [];
  }
}

/** Zero-shot takes no method options. */
export function createZeroShot(setup: Pick<MethodSetup, 'dim' | 'logitScale'> & { methodOptions?: Record<string, unknown> }): Method {
  const extra = Object.keys(setup.methodOptions ?? {});
  if (extra.length > 0) throw new Clap4ClipError(`zeroshot takes no method options, got [${extra.join(', ')}]`);
  return new ZeroShotClip(setup);
}
