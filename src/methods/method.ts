/**
 * The contract between the class-incremental loop and a method (CLAP, its deterministic
 * ablation, the baselines). The loop owns data order, batching, views, the learning-rate schedule,
 * the memory and evaluation; a method owns its parameters and its losses.
 *
 * Labels seen by a method are incremental labels (class-order positions), never dataset labels.
 */
import type { Rng } from '../engine/random.js';
import type { Tensor } from '../engine/tensor.js';

/** Task i owns the contiguous incremental labels [classStart, classEnd). */
export interface TaskInfo {
  index: number;
  classStart: number;
  classEnd: number;
}

/** Frozen inputs every method may use. */
export interface MethodContext {
  /** Embedding width D. */
  dim: number;
  /** e[c, p]: unit-norm text feature of incremental class c with template p, [C_total, P, D]. */
  textPerTemplate: Float32Array;
  numClasses: number;
  numTemplates: number;
  /** CLIP's logit scale exp(logit_scale) (100 for OpenAI CLIP). */
  logitScale: number;
  /** The method's own generator (initialization, noise, dropout). */
  rng: Rng;
}

/** A training batch: image features [B, D] (one view per sample) and incremental labels [B]. */
export interface Batch {
  features: Float32Array;
  labels: Int32Array;
  size: number;
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

export interface Method {
  readonly name: string;
  /** Hyper-parameters that the loop needs (epochs, lr) for each phase. */
  readonly schedule: { epochs: number; lr: number; warmup: boolean; finetuneEpochs: number; finetuneLr: number };
  /** Whether the method trains at all (the zero-shot baseline does not). */
  readonly trainable: boolean;
  /** Called when task `task` starts (expand heads, language-aware init, ...). */
  beginTask(task: TaskInfo): void;
  /** Switches between learning the new task and class-balanced finetuning. */
  setPhase(phase: Phase): void;
  /** One optimization step at learning rate `lr`. */
  trainStep(batch: Batch, lr: number): StepResult;
  /** Logits over all seen classes for `n` image features [n, D], evaluation mode. */
  predict(features: Float32Array, n: number): Prediction;
  /** Called after training (and finetuning) of `task`. */
  endTask(task: TaskInfo): void;
  /** All parameters, by dotted name (checkpoints). */
  namedParameters(): [string, Tensor][];
}
