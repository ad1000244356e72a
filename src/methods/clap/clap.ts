/**
 * CLAP4CLIP as a `Method` (spec sections 3-5): the model of `model.ts`, plain SGD (no momentum,
 * no weight decay) over the trainable set of the current phase, and prediction in evaluation mode.
 *
 * The task step owns batching, the lr schedule (warm-up + cosine while learning, cosine at lr / 10
 * while finetuning: see `traits`), the memory and evaluation. Every random draw (initialization,
 * noise, dropout, data-driven prior subsets) comes from the generator of the call, in call order.
 * Its checkpointed state: every tensor of the model, the template statistics of the seen classes
 * ("text.ebar", "text.variance"), and the tasks.
 */
import { FrozenBlocks } from '../../engine/ops/index.js';
import { SGD } from '../../engine/optim.js';
import { Rng, type RngState } from '../../engine/random.js';
import { noGrad, Tensor } from '../../engine/tensor.js';
import { Clap4ClipError, DataError } from '../../util/errors.js';
import type { Batch, Method, MethodSetup, MethodState, Phase, Prediction, StepAt, StepResult, TaskClasses, TaskInfo, TensorSource } from '../method.js';
import { copiedTensors, loadTensorsInto, savedTasks, savedTensor } from '../state.js';
import { validateClapConfig, type ClapConfig, type ClapConfigInput } from './config.js';
import { ClapModel, type PredictionConstants } from './model.js';
import type { VgaQueries } from './vga.js';

/** A CLAP method, with its resolved config and model exposed for inspection and tests. */
export interface ClapMethod extends Method {
  readonly config: ClapConfig;
  readonly model: ClapModel;
  readonly phase: Phase;
  fixedNoisePredictor(noise: RngState): (features: Float32Array, n: number) => Prediction;
}

/** CLAP's config input: run-level T and B, then the method options (validated by CLAP). */
export function clapConfigOf(setup: Pick<MethodSetup, 'samples' | 'batchSize' | 'methodOptions'>): ClapConfig {
  return validateClapConfig({ samples: setup.samples, batchSize: setup.batchSize, ...setup.methodOptions } as ClapConfigInput);
}

/**
 * @param setup D and the logit scale
 * @param config partial config; missing keys take the reference values (`validateClapConfig`)
 */
export function createClap(setup: Pick<MethodSetup, 'dim' | 'logitScale'>, config: ClapConfigInput = {}): ClapMethod {
  return buildClapMethod('clap', setup, validateClapConfig(config), false);
}

/** Shared by `createClap` and the deterministic ablation. */
export function buildClapMethod(name: string, setup: Pick<MethodSetup, 'dim' | 'logitScale'>, config: ClapConfig, deterministic: boolean): ClapMethod {
  const model = new ClapModel(setup, config, deterministic);
  let phase: Phase = 'train';
  let optimizer: SGD | null = null;
  /**
   * Counts the method's calls that may change the VGA's query block or the seen classes (a new
   * task, a phase change, loading, a step that trains the query block). With the model's
   * `revision` (its tensors handed out or written) it stamps what is cached from them (a
   * predictor's constants, finetuning's query block), which is recomputed when the stamp moved.
   */
  let version = 0;
  const stamp = () => `${version}:${model.revision}`;
  /** Finetuning's query block: the VGA is frozen then, so every step would compute the same one. */
  let finetuneQueries: { stamp: string; queries: VgaQueries } | null = null;
  /**
   * While a task is learned, the earlier tasks' encoders are frozen: baked into the encoders'
   * native graphs once (`FrozenBlocks`), and dropped by anything that may change them (what
   * moves the stamp, train steps aside: a step never writes a frozen tensor).
   */
  let encoderPack: { revision: number; frozen: FrozenBlocks } | null = null;
  const dropPack = () => {
    encoderPack?.frozen.dispose();
    encoderPack = null;
  };
  /** A call that may change the model other than by a train step. */
  const changed = () => {
    version++;
    dropPack();
  };
  const frozenEncoders = (): FrozenBlocks | null => {
    if (encoderPack !== null && encoderPack.revision !== model.revision) dropPack();
    const earlier = model.encoders.slice(0, -1);
    if (encoderPack === null && phase === 'train' && earlier.length > 0 && earlier.every((e) => !e.weight.requiresGrad && !e.bias.requiresGrad)) {
      encoderPack = { revision: model.revision, frozen: new FrozenBlocks(earlier.map((e) => ({ weight: e.weight, bias: e.bias }))) };
    }
    return phase === 'train' ? encoderPack?.frozen ?? null : null;
  };

  /**
   * Logits in evaluation mode, with what `parts` gives computed beforehand (nothing, or a fixed-noise
   * predictor's constants; asked for only when there are images). The VGA's memory is these n
   * images: the caller's evaluation batching decides what one prediction may depend on (spec
   * section 9).
   */
  const predictWith = (features: Float32Array, n: number, rng: Rng, parts: () => Partial<PredictionConstants>): Prediction => {
    if (n === 0) return { logits: new Float32Array(0), samples: model.samples, n: 0, classes: model.classes };
    const out = noGrad(() => model.forward(features, n, { phase, training: false, rng, ...parts() }));
    return { logits: out.logits.data, samples: out.samples, n, classes: out.classes };
  };

  /** The trainable set changes with the phase and with every new task: rebuild the optimizer. */
  const refreshTrainable = () => {
    model.setTrainable(phase);
    optimizer = new SGD(model.namedParameters().filter(([, p]) => p.requiresGrad).map(([, p]) => p), { lr: config.lr });
  };

  const checkBatch = (batch: Batch) => {
    const c = model.classes;
    if (batch.features.length !== batch.size * setup.dim || batch.labels.length !== batch.size || batch.size < 1) {
      throw new Clap4ClipError(`${name}: batch of size ${batch.size} has ${batch.features.length} feature values and ${batch.labels.length} labels (D = ${setup.dim})`);
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
    traits: {
      sgd: {
        train: { epochs: config.epochs, lr: config.lr, shape: 'warmup-cosine' },
        finetune: { epochs: config.finetuneEpochs, lr: config.lr * config.finetuneLrFactor, shape: 'cosine' },
      },
      replay: true,
    },

    beginTask(task: TaskInfo, classes: TaskClasses, rng: Rng): void {
      changed();
      model.addTask(task, classes, rng);
      phase = 'train';
      refreshTrainable();
    },

    setPhase(next: Phase): void {
      changed();
      if (next !== 'train' && next !== 'finetune') throw new Clap4ClipError(`${name}: unknown phase ${String(next)}`);
      phase = next;
      if (model.classes > 0) refreshTrainable();
    },

    trainStep(batch: Batch, at: StepAt, rng: Rng): StepResult {
      if (!optimizer) throw new Clap4ClipError(`${name}: trainStep before beginTask`);
      checkBatch(batch);
      const frozenQueries = model.queryBlockFrozen();
      if (!frozenQueries) version++;
      optimizer.zeroGrad();
      // Dropout only while learning a new task: finetuning runs the (frozen) VGA in eval mode, and
      // its query block is the same at every step until something moves `version`.
      let queries: VgaQueries | undefined;
      if (phase === 'finetune' && frozenQueries) {
        if (finetuneQueries?.stamp !== stamp()) finetuneQueries = { stamp: stamp(), queries: model.evaluationQueries(rng) };
        queries = finetuneQueries.queries;
      }
      const out = model.forward(batch.features, batch.size, { phase, training: phase === 'train', labels: batch.labels, rng, queries, frozenEncoders: frozenEncoders() });
      const loss = out.loss!;
      if (!Number.isFinite(loss.item())) {
        const parts = Object.entries(out.parts).map(([k, v]) => `${k} ${v.item()}`).join(', ');
        throw new Clap4ClipError(`${name}: non-finite loss ${loss.item()} (${parts}); parameters left unchanged`);
      }
      optimizer.backwardStep(loss, at.lr);
      optimizer.zeroGrad();
      const parts: Record<string, number> = {};
      for (const [k, v] of Object.entries(out.parts)) parts[k] = v.item();
      return { loss: loss.item(), parts };
    },

    predict(features: Float32Array, n: number, rng: Rng): Prediction {
      return predictWith(features, n, rng, () => ({}));
    },

    fixedNoisePredictor(noise: RngState): (features: Float32Array, n: number) => Prediction {
      // The noise and the VGA's query block are the same for every batch (model.predictionConstants).
      let constants: { stamp: string; parts: PredictionConstants } | null = null;
      return (features, n) => predictWith(features, n, Rng.fromState(noise), () => {
        if (constants?.stamp !== stamp()) constants = { stamp: stamp(), parts: model.predictionConstants(noise) };
        return constants.parts;
      });
    },

    endTask(task: TaskInfo): void {
      changed();
      const last = model.tasks[model.tasks.length - 1];
      if (!last || last.index !== task.index) throw new Clap4ClipError(`${name}: endTask(${task.index}) but the current task is ${last?.index}`);
      if (config.hierarchical.enabled && config.hierarchical.distillWeight > 0) model.snapshotForDistillation();
    },

    saveState(): MethodState {
      const c = model.classes;
      const d = setup.dim;
      const text: MethodState['tensors'] = c === 0 ? [] : [
        ['text.ebar', new Tensor(model.text.ebar.slice(), [c, d])],
        ['text.variance', new Tensor(model.text.variance.slice(), [c, d])],
      ];
      return {
        tensors: [...text, ...copiedTensors(model.namedParameters())],
        meta: { tasks: model.tasks.map((t) => ({ ...t })), previousClasses: model.previous?.classes ?? null, phase },
      };
    },

    loadState(state: { tensors: TensorSource; meta: Record<string, unknown> }, source: string): void {
      changed();
      if (model.tasks.length > 0) throw new Clap4ClipError(`${name}: loadState needs a fresh method (this one has learned ${model.tasks.length} tasks)`);
      const tasks = savedTasks(state.meta, source, name);
      const d = setup.dim;
      const c = tasks.length === 0 ? 0 : tasks[tasks.length - 1]!.classEnd;
      const ebar = c === 0 ? new Float32Array(0) : savedTensor(state.tensors, 'text.ebar', [c, d], source, name);
      const variance = c === 0 ? new Float32Array(0) : savedTensor(state.tensors, 'text.variance', [c, d], source, name);
      // The structure is rebuilt with a scratch generator: every tensor it draws is overwritten below.
      const scratch = new Rng(0);
      for (const task of tasks) {
        const rows = (x: Float32Array) => x.slice(task.classStart * d, task.classEnd * d);
        model.addTaskFromStats(task, { ebar: rows(ebar), variance: rows(variance) }, scratch);
      }
      const previousClasses = state.meta['previousClasses'];
      if (previousClasses !== null && previousClasses !== undefined) {
        if (!Number.isInteger(previousClasses)) throw new DataError(source, `${name} state: "previousClasses" must be an integer or null`);
        model.snapshotForDistillation();
        if (model.previous) model.previous.classes = previousClasses as number;
      }
      const params = new Map([...state.tensors].filter(([k]) => !k.startsWith('text.')));
      loadTensorsInto(model.namedParameters(), params, source, name);
      const savedPhase = state.meta['phase'];
      phase = savedPhase === 'finetune' ? 'finetune' : 'train';
      if (model.classes > 0) refreshTrainable();
    },

    namedParameters(): [string, Tensor][] {
      return model.namedParameters(); // moves model.revision: the caller may write them
    },
  };
}
