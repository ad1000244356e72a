/**
 * Continual-CLIP zero-shot baseline (spec section 7): logits = logitScale * f t^T over the seen
 * classes, with t[c] = normalize(mean_p e[c, p]). Nothing is trained; memory and finetuning are
 * no-ops for it.
 */
import { matmul } from '../engine/ops/index.js';
import { noGrad, Tensor } from '../engine/tensor.js';
import { Clap4ClipError } from '../util/errors.js';
import type { Batch, Method, MethodContext, Prediction, StepResult, TaskInfo } from './method.js';

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

export class ZeroShotClip implements Method {
  readonly name = 'zeroshot';
  readonly trainable = false;
  readonly schedule = { epochs: 0, lr: 0, warmup: false, finetuneEpochs: 0, finetuneLr: 0 };
  private readonly text: Float32Array;
  private seen = 0;

  constructor(private readonly ctx: MethodContext) {
    this.text = classTextFeatures(ctx.textPerTemplate, ctx.numClasses, ctx.numTemplates, ctx.dim);
  }

  beginTask(task: TaskInfo): void {
    this.seen = task.classEnd;
  }

  setPhase(): void {}

  trainStep(_batch: Batch): StepResult {
    throw new Clap4ClipError('zeroshot trains nothing (trainable is false)');
  }

  predict(features: Float32Array, n: number): Prediction {
    const D = this.ctx.dim;
    if (features.length !== n * D) throw new Clap4ClipError(`zeroshot.predict: ${features.length} values for n x D = ${n} x ${D}`);
    const logits = scaledCosineLogits(new Tensor(features, [n, D]), this.text, this.seen, D, this.ctx.logitScale);
    return { logits, samples: 1, n, classes: this.seen };
  }

  endTask(): void {}

  namedParameters(): [string, Tensor][] {
    return [];
  }
}

export function createZeroShot(ctx: MethodContext): Method {
  return new ZeroShotClip(ctx);
}
