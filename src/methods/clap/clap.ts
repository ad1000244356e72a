/**
 * CLAP4CLIP as a `Method` (spec sections 3-5): the model of `model.ts`, plain SGD (no momentum,
 * no weight decay) over the trainable set of the current phase, and prediction in evaluation mode.
 *
 * The loop owns batching, the lr schedule (warm-up + cosine while learning, cosine at lr / 10 while
 * finetuning: see `schedule`), the memory and evaluation. Every random draw (initialization,
 * noise, dropout, data-driven prior subsets) comes from `ctx.rng`, in call order.
 */
import { SGD } from '../../engine/optim.js';
import { noGrad, type Tensor } from '../../engine/tensor.js';
import { Clap4ClipError } from '../../util/errors.js';
import type { Batch, Method, MethodContext, Phase, Prediction, StepResult, TaskInfo } from '../method.js';
import { validateClapConfig, type ClapConfig, type ClapConfigInput } from './config.js';
import { ClapModel } from './model.js';

/** A CLAP method, with its resolved config and model exposed for inspection and tests. */
export interface ClapMethod extends Method {
  readonly config: ClapConfig;
  readonly model: ClapModel;
  readonly phase: Phase;
}

/**
 * @param ctx frozen inputs (text features per template [C_total, P, D], logit scale, rng)
 * @param config partial config; missing keys take the reference values (`validateClapConfig`)
 */
export function createClap(ctx: MethodContext, config: ClapConfigInput = {}): ClapMethod {
  return buildClapMethod('clap', ctx, validateClapConfig(config), false);
}

/** Shared by `createClap` and the deterministic ablation. */
export function buildClapMethod(name: string, ctx: MethodContext, config: ClapConfig, deterministic: boolean): ClapMethod {
  const model = new ClapModel(ctx, config, deterministic);
  let phase: Phase = 'train';
  let optimizer: SGD | null = null;

  /** The trainable set changes with the phase and with every new task: rebuild the optimizer. */
  const refreshTrainable = () => {
    model.setTrainable(phase);
    optimizer = new SGD(model.namedParameters().filter(([, p]) => p.requiresGrad).map(([, p]) => p), { lr: config.lr });
  };

  const checkBatch = (batch: Batch) => {
    const c = model.classes;
    if (batch.features.length !== batch.size * ctx.dim || batch.labels.length !== batch.size || batch.size < 1) {
      throw new Clap4ClipError(`${name}: batch of size ${batch.size} has ${batch.features.length} feature values and ${batch.labels.length} labels (D = ${ctx.dim})`);
    }
    for (const y of batch.labels) {
      if (!(y >= 0 && y < c)) throw new Clap4ClipError(`${name}: label ${y} outside the ${c} seen classes`);
    }
  };

  return {
    name,
    config,
    model,
    get phase() { return phase; },
    schedule: {
      epochs: config.epochs,
      lr: config.lr,
      warmup: true,
      finetuneEpochs: config.finetuneEpochs,
      finetuneLr: config.lr * config.finetuneLrFactor,
    },
    trainable: true,

    beginTask(task: TaskInfo): void {
      model.addTask(task);
      phase = 'train';
      refreshTrainable();
    },

    setPhase(next: Phase): void {
      if (next !== 'train' && next !== 'finetune') throw new Clap4ClipError(`${name}: unknown phase ${String(next)}`);
      phase = next;
      if (model.classes > 0) refreshTrainable();
    },

    trainStep(batch: Batch, lr: number): StepResult {
      if (!optimizer) throw new Clap4ClipError(`${name}: trainStep before beginTask`);
      checkBatch(batch);
      optimizer.zeroGrad();
      // Dropout only while learning a new task: finetuning runs the (frozen) VGA in eval mode.
      const out = model.forward(batch.features, batch.size, { phase, training: phase === 'train', labels: batch.labels });
      const loss = out.loss!;
      if (!Number.isFinite(loss.item())) {
        const parts = Object.entries(out.parts).map(([k, v]) => `${k} ${v.item()}`).join(', ');
        throw new Clap4ClipError(`${name}: non-finite loss ${loss.item()} (${parts}); parameters left unchanged`);
      }
      loss.backward();
      optimizer.step(lr);
      optimizer.zeroGrad();
      const parts: Record<string, number> = {};
      for (const [k, v] of Object.entries(out.parts)) parts[k] = v.item();
      return { loss: loss.item(), parts };
    },

    predict(features: Float32Array, n: number): Prediction {
      if (n === 0) return { logits: new Float32Array(0), samples: model.samples, n: 0, classes: model.classes };
      // The VGA's memory is these n images: the loop's evaluation batching decides what one
      // prediction may depend on (spec section 9).
      const out = noGrad(() => model.forward(features, n, { phase, training: false }));
      return { logits: out.logits.data, samples: out.samples, n, classes: out.classes };
    },

    endTask(task: TaskInfo): void {
      const last = model.tasks[model.tasks.length - 1];
      if (!last || last.index !== task.index) throw new Clap4ClipError(`${name}: endTask(${task.index}) but the current task is ${last?.index}`);
      if (config.hierarchical.enabled && config.hierarchical.distillWeight > 0) model.snapshotForDistillation();
    },

    namedParameters(): [string, Tensor][] {
      return model.namedParameters();
    },
  };
}
