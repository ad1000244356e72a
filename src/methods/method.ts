/**
 * The contract between the class-incremental task step (`src/cl/taskStep.ts`) and a method (CLAP,
 * its deterministic ablation, the baselines). The step owns data order, batching, views, the
 * learning-rate schedule, the memory and evaluation; a method owns its parameters, its losses and
 * whatever statistics it fits.
 *
 * A method learns classes as they arrive: the text features of a task's classes are handed to it
 * when the task begins, so nothing is rebuilt or replayed when a class is added. Every random draw
 * it makes comes from the generator passed to the call (initialization in `beginTask`, noise and
 * dropout in `trainStep`, test-time samples in `predict`); a method keeps no generator of its own,
 * which is what makes restoring a checkpoint "load its state" and nothing else.
 *
 * Labels seen by a method are incremental labels (class-order positions), never dataset labels.
 */
import type { FeaturesSplit } from '../data/types.js';
import type { Rng, RngState } from '../engine/random.js';
import type { Tensor } from '../engine/tensor.js';

/** Task i owns the contiguous incremental labels [classStart, classEnd). */
export interface TaskInfo {
  index: number;
  classStart: number;
  classEnd: number;
}

/** The text side of a task's new classes. */
export interface TaskClasses {
  /** e[c, p]: unit-norm text feature of new class c (in label order) with template p, [n_i, P, D]. */
  textPerTemplate: Float32Array;
  numTemplates: number;
}

/** What every method is built with: frozen run-level settings, never data. */
export interface MethodSetup {
  /** Embedding width D. */
  dim: number;
  /** CLIP's logit scale exp(logit_scale) (100 for OpenAI CLIP). */
  logitScale: number;
  /** Monte-Carlo samples T (probabilistic methods). */
  samples: number;
  /** Training batch size (the reference scales CLAP's lr with it). */
  batchSize: number;
  /** Method-specific options, validated by the method's own file. */
  methodOptions: Record<string, unknown>;
}

/** A training batch: image features [B, D] (one view per sample) and incremental labels [B]. */
export interface Batch {
  features: Float32Array;
  labels: Int32Array;
  size: number;
}

/** Where an SGD step sits in its phase (a method may use more than the learning rate). */
export interface StepAt {
  lr: number;
  /** Iteration k of `iterations` in this phase (0-based). */
  iteration: number;
  iterations: number;
  epoch: number;
}

export interface StepResult {
  /** Total loss of the step. */
  loss: number;
  /** Its named terms (ce, kl, lasp, ...). */
  parts: Record<string, number>;
}

/** Logits of a prediction: [samples, n, classes] (samples = 1 for deterministic methods). */
export interface Prediction {
  logits: Float32Array;
  samples: number;
  n: number;
  classes: number;
}

export type Phase = 'train' | 'finetune';

/**
 * How the learning rate moves over a phase's S iterations: warm-up + cosine or cosine (spec
 * section 5), or 'multistep': lr * gamma^(milestones passed), stepped per epoch (MultiStepLR).
 */
export type LrShape = 'warmup-cosine' | 'cosine' | 'multistep';

/** One SGD phase: epochs over the phase's samples at a scheduled learning rate. */
export interface SgdSchedule {
  epochs: number;
  lr: number;
  shape: LrShape;
  /** 'multistep' only: the epochs (0-based) at whose start lr is multiplied by `gamma`. */
  milestones?: readonly number[];
  gamma?: number;
}

/**
 * What a method does with a task, besides being told it began and ended:
 * - `train`: SGD on (memory + the task's samples), or null;
 * - `finetune`: class-balanced SGD on the memory after every task but the first, or null;
 * - `replay`: whether it keeps an exemplar memory (which the step then updates after each task).
 */
export interface MethodTraits {
  sgd: { train: SgdSchedule | null; finetune: SgdSchedule | null };
  replay: boolean;
  /**
   * Which view of a cached sample a training batch takes: 'random' (the default: one view drawn per
   * sample, the reference's random horizontal flip) or 'first' (view 0, the image as CLIP's test
   * preprocessing gives it, for a method that trains without augmentation; no draw is made).
   */
  views?: 'random' | 'first';
}

/** The training rows of a step, for a method that fits statistics of the data. */
export interface TaskData {
  /** Rows of the features (image features [n, views, D]). */
  split: FeaturesSplit;
  /** Rows of `split` the step trains on (memory first, then the task's samples). */
  indices: Int32Array;
  /** Incremental label of every row of `split`. */
  labels: Int32Array;
}

/** A method's checkpointed state: tensors by name (copied) and JSON-safe metadata. */
export interface MethodState {
  tensors: [string, Tensor][];
  meta: Record<string, unknown>;
}

/** Tensors by name, as a method or a saved file holds them. */
export type TensorSource = ReadonlyMap<string, { shape: readonly number[]; data: Float32Array }>;

export interface Method {
  readonly name: string;
  readonly traits: MethodTraits;
  /** What a reader of its results must know (e.g. a logit scale that leaves the softmax near uniform); written to results.json. */
  readonly notes?: readonly string[];
  /** Task `task` starts with these new classes (expand heads, language-aware init, ...). */
  beginTask(task: TaskInfo, classes: TaskClasses, rng: Rng): void;
  /**
   * Sees the task's training rows once, after the SGD phase of learning it (if any) and before the
   * memory is updated: class prototypes, a ridge regression, covariances.
   */
  fit?(data: TaskData, rng: Rng): void;
  /** Switches between learning the new task and class-balanced finetuning. */
  setPhase(phase: Phase): void;
  /** One optimization step. */
  trainStep(batch: Batch, at: StepAt, rng: Rng): StepResult;
  /** Logits over all seen classes for `n` image features [n, D], evaluation mode. */
  predict(features: Float32Array, n: number, rng: Rng): Prediction;
  /**
   * Optional: `(features, n) => predict(features, n, Rng.fromState(noise))`, the same numbers,
   * for a run of predictions with one noise state (an evaluation). A method computes once there
   * what does not depend on the images (CLAP: its T noise draws, the VGA's self-attention over
   * the class queries) and computes it again after anything that may change it: learning,
   * `loadState`, `namedParameters` (whose tensors a caller may write).
   */
  fixedNoisePredictor?(noise: RngState): (features: Float32Array, n: number) => Prediction;
  /** Called after training (and finetuning) of `task`. */
  endTask(task: TaskInfo, rng: Rng): void;
  /** Everything needed to continue from here: tensors (parameters and buffers) and metadata. */
  saveState(): MethodState;
  /**
   * Restores a state of `saveState` into a freshly created method (same setup).
   * @param source names the state's origin in errors (a file, "the current model")
   */
  loadState(state: { tensors: TensorSource; meta: Record<string, unknown> }, source: string): void;
  /** The trainable and frozen parameters, by dotted name (reference checkpoints, tests). */
  namedParameters(): [string, Tensor][];
}
